"""ORM models. Times are UNIX seconds (float) so the scheduler and the store share one unit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from aifactory.domain.money import whole_seconds

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    facility_role: Mapped[str] = mapped_column(String(16))
    default_project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL")
    )
    created_at: Mapped[float] = mapped_column(Float)
    # Argon2id (services.passwords) for the portal's sign-in; None: no password, tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(255))


class ApiToken(Base):
    """Only the SHA-256 of a token is kept; tokens are 256-bit random, so no slow hash is needed."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class UserIdentity(Base):
    """A federated identity (OIDC: issuer + `sub`, stable for life) that signs in as this user.

    One user may link several (their institution's, a federation proxy's); an identity belongs to
    one user only."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32))  # the configured provider it came through
    created_at: Mapped[float] = mapped_column(Float)
    last_sign_in_at: Mapped[float | None] = mapped_column(Float)


class SignInAttempt(Base):
    """A federated sign-in under way. What finishing it needs stays here, not in the browser
    (the PKCE verifier, the nonce), and is used once: a replayed state finds nothing."""

    __tablename__ = "sign_in_attempts"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    # Set when a signed-in user links an identity to their account (not a sign-in).
    link_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class SignInRequest(Base):
    """A person's first sign-in, waiting for an admin where the provider asks for approval."""

    __tablename__ = "sign_in_requests"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    claims: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(16))  # approved | rejected


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class Member(Base):
    __tablename__ = "members"
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    # The sign-in provider whose entitlement rules granted this membership (it follows the
    # entitlements at each sign-in); None: granted by a person, and left alone by sign-ins.
    entitled_by: Mapped[str | None] = mapped_column(String(32))


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    pool: Mapped[str] = mapped_column(String(64))
    executor: Mapped[str] = mapped_column(String(16))
    gpus: Mapped[int] = mapped_column(Integer)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    gpu_ids: Mapped[list[str]] = mapped_column(JSON)
    cpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    # Offered by its executor and not drained: the one flag every reader of capacity checks.
    schedulable: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[float] = mapped_column(Float)
    # A drain (store.nodes.drain/resume write these three together; None: not drained):
    # why, who ("health": the health check) and since when.
    drain_reason: Mapped[str | None] = mapped_column(Text)
    drained_by: Mapped[str | None] = mapped_column(String(128))
    drained_at: Mapped[float | None] = mapped_column(Float)
    # The latest health check: what failed (None: it passed, or none ran yet) and when.
    health_problem: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[float | None] = mapped_column(Float)
    # Its network block as its executor last reported it (None: no topology declared).
    block: Mapped[str | None] = mapped_column(String(128))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("project_id", "idempotency_key", name="uq_jobs_project_idempotency"),
        Index("ix_jobs_state_id", "state", "id"),
        Index("ix_jobs_project_id_id", "project_id", "id"),
        # the dashboard's queue and waits over a window
        Index("ix_jobs_submitted_at", "submitted_at"),
        Index("ix_jobs_admitted_at", "admitted_at"),
        # the scheduler's runtime history (the latest finished jobs)
        Index("ix_jobs_ended_at", "ended_at"),
        # the scheduler's decayed usage, summed per project from this index alone
        Index("ix_jobs_usage", "project_id", "started_at", "ended_at", "gpus_per_node", "nodes"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(128))
    command: Mapped[list[str]] = mapped_column(JSON)
    env: Mapped[dict[str, Any]] = mapped_column(JSON)
    working_dir: Mapped[str | None] = mapped_column(Text)
    gpus_per_node: Mapped[int] = mapped_column(Integer)
    nodes: Mapped[int] = mapped_column(Integer)
    cpus_per_node: Mapped[int] = mapped_column(Integer)
    memory_mb_per_node: Mapped[int] = mapped_column(Integer)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    time_limit_s: Mapped[int] = mapped_column(Integer)
    preemptible: Mapped[bool] = mapped_column(Boolean)
    priority: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(Text)
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the scheduler asks to preempt an active job (the intent, committed before any
    # signal is sent); cleared when the job is requeued.
    preempt_requested_at: Mapped[float | None] = mapped_column(Float)
    preempt_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[float] = mapped_column(Float)
    admitted_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # Data governance: whether it declared datasets (job_datasets), and the countries their
    # residencies allow it to run in (None: anywhere). Versions are immutable, so both are
    # settled at submission and the scheduler reads them without a join.
    uses_datasets: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    countries: Mapped[list[str] | None] = mapped_column(JSON)
    # The job's network in its sandbox: "none" (loopback only, the default) or "open".
    network: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    # Jobs of its project whose own directories it reads, read-only (domain.jobs.JobSpec).
    inputs: Mapped[list[int] | None] = mapped_column(JSON)
    # Its dependencies: [{"after": "ok" | "any" | "not-ok", "job": id}] (domain.dependencies).
    after: Mapped[list[Any] | None] = mapped_column(JSON)
    # A task of an array (domain.arrays): the array's id (its first task's), this task's index,
    # and how many of its tasks may run at once (None: no limit).
    array_id: Mapped[int | None] = mapped_column(Integer, index=True)
    array_index: Mapped[int | None] = mapped_column(Integer)
    array_throttle: Mapped[int | None] = mapped_column(Integer)
    # Its software (software/), settled at submission: the environment by the name it gave and
    # the build it named then (its content key), or the image by name and digest. A name
    # changed later does not change what the job runs in.
    environment: Mapped[str | None] = mapped_column(String(64))
    environment_key: Mapped[str | None] = mapped_column(String(64), index=True)
    image: Mapped[str | None] = mapped_column(String(128))
    image_digest: Mapped[str | None] = mapped_column(String(80), index=True)
    # A replica of an inference endpoint (its engine), or None.
    endpoint_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Its owner asked to be told of its end (store.outbox.tell_job_ended).
    notify: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A gang that must run inside one network block (scheduler.topology).
    one_block: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class JobEvent(Base):
    """One row per state change, written in the same transaction as the change; and one
    (from and to the same state) when a preemption is asked for, so its reason shows at once."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[float] = mapped_column(Float)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))


class Lease(Base):
    """A named lease (e.g. the one control loop). `epoch` grows on every change of holder."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float)


class FacilityFlag(Base):
    """Operator switches that must survive a restart (e.g. admission paused)."""

    __tablename__ = "facility_flags"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class JobVerdict(Base):
    """The last round's verdict on a waiting job (scheduler.verdict), kept by the control loop
    so that `queue`, `show`, the job page and the API read it instead of judging the whole
    facility again per request. One row per waiting job; a job that stops waiting loses it."""

    __tablename__ = "job_verdicts"
    __table_args__ = (Index("ix_job_verdicts_line", "held", "position", "job_id"),)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    held: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int | None] = mapped_column(Integer)  # 1 = next in line; None: held
    reason: Mapped[str] = mapped_column(Text)
    estimated_start: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[float] = mapped_column(Float)


# ---- programmes, calls, proposals, allocations (accounting) ------------------------------
# Money is whole euro cents, metered time (usage and the ledger) whole GPU- or
# CPU-milliseconds; tariffs are decimal euros kept as text so no float ever touches a price.


class Programme(Base):
    __tablename__ = "programmes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    eligible_kinds: Mapped[list[str]] = mapped_column(JSON)
    gpu_tariffs: Mapped[dict[str, Any]] = mapped_column(JSON)  # model or "*" → "€/GPU-h" text
    cpu_tariff: Mapped[str] = mapped_column(String(32))
    subsidy_pct: Mapped[int] = mapped_column(Integer)
    # € per million tokens through the gateway (issue 19), text as the other tariffs.
    prompt_token_tariff: Mapped[str] = mapped_column(String(32), default="0", server_default="0")
    completion_token_tariff: Mapped[str] = mapped_column(
        String(32), default="0", server_default="0"
    )
    priority_weight: Mapped[int] = mapped_column(Integer)
    preemptible_default: Mapped[bool] = mapped_column(Boolean)
    max_gpus_per_job: Mapped[int | None] = mapped_column(Integer)
    capacity_share: Mapped[float] = mapped_column(Float)
    starter_gpu_hours: Mapped[float] = mapped_column(Float)  # auto-approve up to this; 0: never
    starter_days: Mapped[int] = mapped_column(Integer)
    # Who it serves (domain.access_modes.Track: science, innovation free; industry paid); None:
    # no AI Factory track (issue 21).
    track: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)


class Call(Base):
    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[float] = mapped_column(Float)
    closes_at: Mapped[float] = mapped_column(Float)
    budget_gpu_hours: Mapped[float] = mapped_column(Float)
    # Access mode and its terms (domain.access_modes, issue 21); calls made before are "reviewed".
    access_mode: Mapped[str] = mapped_column(String(16), server_default="reviewed")
    ceiling_gpu_hours: Mapped[float | None] = mapped_column(Float)  # per proposal
    min_days: Mapped[int | None] = mapped_column(Integer)  # an allocation's length
    max_days: Mapped[int | None] = mapped_column(Integer)
    cutoff_days: Mapped[list[int] | None] = mapped_column(JSON)  # Large Scale: days of the month
    funding: Mapped[str] = mapped_column(String(16), server_default="national")  # eu | national
    created_at: Mapped[float] = mapped_column(Float)


class Proposal(Base):
    __tablename__ = "proposals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text)
    justification: Mapped[str] = mapped_column(Text)
    requested_gpu_hours: Mapped[float] = mapped_column(Float)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    planned_datasets: Mapped[list[str]] = mapped_column(JSON)
    requested_days: Mapped[int | None] = mapped_column(Integer)  # within the call's durations
    state: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float)
    decision_note: Mapped[str | None] = mapped_column(Text)


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("proposal_id", "reviewer_id", name="uq_reviews_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_at: Mapped[float] = mapped_column(Float)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[float | None] = mapped_column(Float)


class Allocation(Base):
    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), index=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id"))
    award_gpu_s: Mapped[int] = mapped_column(BigInteger)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    quota_gpus: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[float] = mapped_column(Float)
    valid_to: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class LedgerEntry(Base):
    """Append-only. `gpu_ms` is the signed effect on the allocation's balance (domain.ledger);
    `key` is natural and unique, so an action replayed after a crash is refused, not doubled.
    A settlement's cents are its attempt's own cost (as on its usage record), not a bill."""

    __tablename__ = "ledger_entries"
    # Balances are sums by kind: from this index alone, however long the ledger.
    __table_args__ = (
        Index("ix_ledger_entries_allocation_kind", "allocation_id", "kind", "gpu_ms"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    gpu_ms: Mapped[int] = mapped_column(BigInteger)
    cost_cents: Mapped[int] = mapped_column(BigInteger)
    subsidy_cents: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)

    @property
    def gpu_s(self) -> int:
        """`gpu_ms` in whole seconds, for readers that show seconds (never summed)."""
        return whole_seconds(self.gpu_ms)


class UsageRecord(Base):
    """What one attempt of a job consumed, written when the attempt ends (once: unique).
    `booked_at` is when it was settled: invoices bill by it, so a charge settled late (after a
    restart) lands in the next invoice instead of in a month already invoiced.

    Bills are made from the exact `gpu_ms`/`cpu_ms` at the terms the attempt settled under
    (`gpu_price`, `cpu_price`: € per hour as text; `subsidy_pct`), rounded once per invoice
    line. The cents are the attempt's own cost, rounded for showing it alone: never summed."""

    __tablename__ = "usage_records"
    __table_args__ = (UniqueConstraint("job_id", "attempt", name="uq_usage_records_attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"), index=True)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    gpus: Mapped[int] = mapped_column(Integer)
    cpus: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float] = mapped_column(Float, index=True)
    gpu_ms: Mapped[int] = mapped_column(BigInteger)
    cpu_ms: Mapped[int] = mapped_column(BigInteger)
    energy_j: Mapped[float] = mapped_column(Float)
    energy_measured: Mapped[bool] = mapped_column(Boolean)
    # What the attempt held of memory, and what its executor measured it used (None: not
    # recorded or not measured): its efficiency report (services.efficiency), never billed.
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    cpu_time_s: Mapped[float | None] = mapped_column(Float)
    peak_rss_mb: Mapped[float | None] = mapped_column(Float)
    gpu_utilisation_pct: Mapped[float | None] = mapped_column(Float)
    peak_gpu_memory_mb: Mapped[float | None] = mapped_column(Float)
    gpu_price: Mapped[str] = mapped_column(String(32))
    cpu_price: Mapped[str] = mapped_column(String(32))
    subsidy_pct: Mapped[int] = mapped_column(Integer)
    gpu_cents: Mapped[int] = mapped_column(BigInteger)
    cpu_cents: Mapped[int] = mapped_column(BigInteger)
    subsidy_cents: Mapped[int] = mapped_column(BigInteger)
    booked_at: Mapped[float] = mapped_column(Float, index=True)

    @property
    def gpu_s(self) -> int:
        """`gpu_ms` in whole seconds, for readers that show seconds (never summed)."""
        return whole_seconds(self.gpu_ms)

    @property
    def cpu_s(self) -> int:
        """`cpu_ms` in whole seconds, for readers that show seconds (never summed)."""
        return whole_seconds(self.cpu_ms)


class AllocationAlert(Base):
    __tablename__ = "allocation_alerts"
    __table_args__ = (
        UniqueConstraint("allocation_id", "threshold", name="uq_allocation_alerts_threshold"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    threshold: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)


class IssuedInvoice(Base):
    """Immutable once issued: the lines, totals and the PDF itself are stored as issued."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("project_id", "month", name="uq_invoices_project_month"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    issued_at: Mapped[float] = mapped_column(Float)
    issued_by: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    vat_pct: Mapped[int] = mapped_column(Integer)
    gross_cents: Mapped[int] = mapped_column(BigInteger)
    subsidy_cents: Mapped[int] = mapped_column(BigInteger)
    net_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[Any]] = mapped_column(JSON)
    csv: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)


# ---- federation with an upstream allocation portal (services.federation) -----------------


class FederationImport(Base):
    """One file of award records imported (or refused as a whole, never stored then): who, when,
    which file (its name and SHA-256) and what each record did (`outcomes`)."""

    __tablename__ = "federation_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, index=True)
    source: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    outcomes: Mapped[list[Any]] = mapped_column(JSON)  # per record: award, outcome, reason


class FederationAward(Base):
    """An upstream award and the allocation it became: the upstream's id is the idempotency
    key, and its terms as last applied (`gpu_s`, window) tell a changed record from a resend."""

    __tablename__ = "federation_awards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    award_id: Mapped[str] = mapped_column(String(128), unique=True)
    upstream_project_id: Mapped[str] = mapped_column(String(128), index=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    pi_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    gpu_s: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[float] = mapped_column(Float)
    valid_to: Mapped[float] = mapped_column(Float)
    import_id: Mapped[int] = mapped_column(ForeignKey("federation_imports.id"))  # last change
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


# ---- audit log (governance.audit) ----------------------------------------------------------


class AuditEvent(Base):
    """Append-only and hash-chained (domain.audit): `hash` covers every other column but `id`,
    and `prev_hash` is the hash of event `seq - 1`."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_object_seq", "object", "seq"),
        Index("ix_audit_events_project_id_seq", "project_id", "seq"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: history outlives
    source: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row (id 1): the last event's seq and hash. Appends lock it, so concurrent writers
    take turns and the chain stays one line; it also shows when the tail was cut off."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


# ---- data governance (governance.datasets, governance.erasure) ------------------------------


class Site(Base):
    """Where nodes stand: the country decides which datasets may be processed there."""

    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[float] = mapped_column(Float)


class Dataset(Base):
    """A named dataset; its data and its terms live in immutable versions. No owner project:
    a facility dataset, granted by facility admins."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    controller: Mapped[str] = mapped_column(Text)  # GDPR Art. 4(7): decides why and how
    processor: Mapped[str] = mapped_column(Text)  # Art. 4(8): processes on its behalf
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class DatasetVersion(Base):
    """One upload: where it lies, what it hashes to, and the terms it was registered under.
    Never changed after registration except by erasure (`state`)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
        Index("ix_dataset_versions_state_retention", "state", "retention_until"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)  # absolute, resolved, under the data root
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    classification: Mapped[str] = mapped_column(String(24))
    legal_basis: Mapped[str | None] = mapped_column(String(32))
    special_condition: Mapped[str | None] = mapped_column(String(40))
    dpia_ref: Mapped[str | None] = mapped_column(String(200))
    purposes: Mapped[list[str]] = mapped_column(JSON)
    residency: Mapped[str] = mapped_column(String(3))
    retention_until: Mapped[float] = mapped_column(Float)
    licence: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # present | erasing | erased
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[float] = mapped_column(Float)
    erased_at: Mapped[float | None] = mapped_column(Float)


class DatasetGrant(Base):
    __tablename__ = "dataset_grants"
    __table_args__ = (Index("ix_dataset_grants_project_dataset", "project_id", "dataset_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    purpose: Mapped[str] = mapped_column(Text)
    until: Mapped[float] = mapped_column(Float)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class JobDataset(Base):
    """A dataset version a job declared, resolved at submission: what it may read, and what an
    erasure report lists as having used it."""

    __tablename__ = "job_datasets"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), primary_key=True, index=True
    )
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    env_name: Mapped[str] = mapped_column(String(96))


class Erasure(Base):
    """An erasure (GDPR Art. 17, retention expiry or project closure) of one dataset version:
    recorded → erasing → done. `erasing` survives a crash and is finished on restart."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_state", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # request | retention | closure
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))  # recorded | erasing | done
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    certificate_pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    completed_at: Mapped[float | None] = mapped_column(Float)


class ProjectClosure(Base):
    """A project closed for good: its jobs' files and its datasets erased, with a certificate."""

    __tablename__ = "project_closures"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))  # closing | closed
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    certificate_pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    completed_at: Mapped[float | None] = mapped_column(Float)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, kept here only as SHA-256 (as API
    tokens are); `csrf_token` must come back with every form the browser posts."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))  # how they signed in: password | token | …
    # Signed in with an API token: the session ends with it (revoked, expired, deleted).
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE")
    )
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class FacilitySample(Base):
    """The facility once a minute, written by the acting control loop: the dashboard's charts
    read these instead of every job's history (fast on any number of jobs)."""

    __tablename__ = "facility_samples"
    at: Mapped[float] = mapped_column(Float, primary_key=True)
    gpus_total: Mapped[int] = mapped_column(Integer)  # on schedulable nodes
    gpus_busy: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer)  # admitted or running
    waiting: Mapped[int] = mapped_column(Integer)  # pending or held


class EnvironmentBuild(Base):
    """One Python environment as built (or to be built) from its content: the requirements,
    the Python and the registry (`domain.environments.environment_key`). Built once and shared
    by every named environment with the same content; never changed once ready."""

    __tablename__ = "environment_builds"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    python: Mapped[str] = mapped_column(String(16))  # asked for: "3.11"
    requirements: Mapped[list[str]] = mapped_column(JSON)  # canonical, sorted
    index_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued|building|ready|failed
    builder: Mapped[str | None] = mapped_column(String(128))  # host:pid of the one building it
    error: Mapped[str | None] = mapped_column(Text)
    python_version: Mapped[str | None] = mapped_column(String(32))  # as found: "3.11.7"
    packages: Mapped[list[Any] | None] = mapped_column(JSON)  # resolved: name, version, …
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)


class SoftwareEnvironment(Base):
    """A name for a build: a project's own (`project_id`) or the facility's (None)."""

    __tablename__ = "environments"
    __table_args__ = (Index("ix_environments_project_name", "project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(64))
    build_key: Mapped[str] = mapped_column(ForeignKey("environment_builds.key"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class Image(Base):
    """An OCI image an admin imported (software.images), by its digest; a project's own or
    the facility's (None). Never pulled from anywhere."""

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_project_name", "project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(80), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # architecture, env, cmd, working dir…
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[float] = mapped_column(Float)


class Endpoint(Base):
    """A model a project serves (issue 19): its replicas are jobs of the project's, each an
    engine listening on a Unix socket in its own directory; the gateway routes to them."""

    __tablename__ = "endpoints"
    __table_args__ = (Index("ix_endpoints_project_name", "project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(64))  # the model's name at /v1
    # The recipe's engine serves a finished job's checkpoints; vLLM a model directory in a dataset.
    engine: Mapped[str] = mapped_column(String(16), default="recipe", server_default="recipe")
    source_job_id: Mapped[int | None] = mapped_column(Integer)
    dataset: Mapped[str | None] = mapped_column(String(200))
    engine_args: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Replicas that always run (not preemptible) and the most the autoscaler adds (those above
    # the minimum are preemptible): control.endpoints, domain.autoscale.
    min_replicas: Mapped[int] = mapped_column("replicas", Integer)
    max_replicas: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    concurrency: Mapped[int] = mapped_column(Integer, default=4, server_default="4")
    idle_timeout_s: Mapped[float] = mapped_column(Float, default=900.0, server_default="900")
    # Each replica's time limit (what its allocation reserves); one that reaches it is replaced.
    time_limit_s: Mapped[float] = mapped_column(Float, default=86400.0, server_default="86400")
    cpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)
    environment: Mapped[str | None] = mapped_column(String(64))  # its replicas' (a name)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    deleted_at: Mapped[float | None] = mapped_column(Float)
    wanted_at: Mapped[float | None] = mapped_column(Float)  # a request found no replica running
    draining: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # job id → since
    trouble: Mapped[str | None] = mapped_column(Text)  # why it stopped starting replicas


class InferenceKey(Base):
    """A project's key for the gateway (`/v1`): only its SHA-256 is kept; it may expire, be
    revoked, hold a token budget and name the models it may call."""

    __tablename__ = "inference_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    models: Mapped[list[str] | None] = mapped_column(JSON)  # None: every model of its project
    token_budget: Mapped[int | None] = mapped_column(BigInteger)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    # A budget in euro cents, and what the key spent in nano-cents (10⁻⁹ cent: a token's price
    # at a tariff of up to 5 decimals per million tokens is a whole number of them).
    budget_cents: Mapped[int | None] = mapped_column(BigInteger)
    spent_nanocents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rpm: Mapped[int | None] = mapped_column(Integer)  # requests per minute, at most
    tpm: Mapped[int | None] = mapped_column(Integer)  # tokens per minute, at most
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class InferenceUsage(Base):
    """One request through the gateway: its key, endpoint, tokens (from the engine's `usage`)
    and how it ended."""

    __tablename__ = "inference_usage"
    __table_args__ = (
        Index("ix_inference_usage_project_at", "project_id", "at"),
        Index("ix_inference_usage_endpoint_at", "endpoint_id", "at"),
        Index("ix_inference_usage_at", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("inference_keys.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    ms: Mapped[float] = mapped_column(Float)
    # Who paid and at what terms, fixed when it was asked (services.gateway.authorize): its
    # exact price in nano-cents and the programme's subsidy; None: metered only, not billed.
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    cost_nanocents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    subsidy_pct: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class InteractiveSession(Base):
    """A JupyterLab (or shell) session (issue 20): a job of its project whose notebook server
    listens on a Unix socket in the job's directory; the facility proxies to it with the
    server's own token, and stops it when idle (control.sessions)."""

    __tablename__ = "interactive_sessions"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    idle_timeout_s: Mapped[float] = mapped_column(Float)
    notebook_token: Mapped[str] = mapped_column(String(64))  # the server's; never shown
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    # What its server said when last asked (control.sessions): the idle clock and culling.
    checked_at: Mapped[float | None] = mapped_column(Float)
    last_activity_at: Mapped[float | None] = mapped_column(Float)
    connections: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    busy_kernels: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    culled_reason: Mapped[str | None] = mapped_column(Text)  # why the facility stopped it


class SessionPass(Base):
    """What lets a browser into one session's origin: a one-use ticket from the portal
    (`ticket`, a minute) traded there for a cookie (`cookie`); only SHA-256s are kept."""

    __tablename__ = "session_passes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float)
    # What it came from ends it too: the portal sign-in, or the API token that asked for it.
    web_session_id: Mapped[int | None] = mapped_column(Integer)
    api_token_id: Mapped[int | None] = mapped_column(Integer)


# ---- notifications (domain.notifications; store.outbox; control.notifier) ---------------


class NotificationPreference(Base):
    """What one person wants to hear of, and how; no row: `domain.notifications.Preferences()`.
    The webhook secret signs each delivery, so it is kept as given (the database is the
    facility's alone, DESIGN §8)."""

    __tablename__ = "notification_preferences"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    events: Mapped[list[str]] = mapped_column(JSON)
    email: Mapped[bool] = mapped_column(Boolean)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[float] = mapped_column(Float)


class OutboxNotification(Base):
    """The outbox: one delivery (an event, a user, a channel), written in the transaction of
    the change it tells of, sent later by the notifier: pending → sent | failed (given up)."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_key: Mapped[str] = mapped_column(String(255), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)


class MaintenanceWindow(Base):
    """Nodes out of service from `begins_at` to `ends_at` (scheduler.maintenance), announced to
    users when created. `nodes` is a list of node ids, or ["*"]: every node, those added later
    too. Cancelled windows stay, with who cancelled them and when, for the record."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_windows_ends_at", "ends_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nodes: Mapped[list[str]] = mapped_column(JSON)
    begins_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    cancelled_by: Mapped[str | None] = mapped_column(String(128))
    cancelled_at: Mapped[float | None] = mapped_column(Float)
