"""Request and response schemas: the API's own family of models (not ORM, not domain). The
input types the portal checks alike (`Name`, `JobSubmit`, ...) live in
`faces.inputs`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aifactory.domain.jobs import JobState, Network
from aifactory.domain.placement import NodeShare
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.faces.inputs import MAX_ID as MAX_ID
from aifactory.faces.inputs import JobSubmit as JobSubmit
from aifactory.faces.inputs import Name as Name
from aifactory.faces.inputs import Priority
from aifactory.faces.inputs import Request as Request
from aifactory.services.auth import MAX_TTL_DAYS, MIN_TTL_DAYS


class JobPriority(Request):
    priority: Priority


def _iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class JobOut(Response):
    id: int
    name: str
    project: str
    user: str
    state: JobState
    state_reason: str | None
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    gpus: int
    nodes: int
    cpus: int
    memory_mb: int
    gpu_model: str | None
    time_limit_s: int
    preemptible: bool
    priority: int
    network: Network
    environment: str | None = Field(None, description="the Python environment it runs in")
    environment_key: str | None = Field(None, description="…its build, as settled at submission")
    image: str | None = Field(None, description="the container image it runs in")
    image_digest: str | None = Field(None, description="…its digest, as settled at submission")
    notify: bool = Field(False, description="its owner is told when it ends")
    one_block: bool = Field(False, description="it must run inside one network block")
    inputs: list[int]
    after_ok: list[int]
    after_any: list[int]
    after_not_ok: list[int]
    array_id: int | None
    array_index: int | None
    array_throttle: int | None
    idempotency_key: str | None
    cancel_requested: bool
    attempts: int
    exit_code: int | None
    placement: dict[str, Any] | None
    submitted_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, job: Any, project: str, user: str) -> JobOut:
        return cls(
            id=job.id,
            name=job.name,
            project=project,
            user=user,
            state=JobState(job.state),
            state_reason=job.state_reason,
            command=job.command,
            env=job.env,
            working_dir=job.working_dir,
            gpus=job.gpus_per_node,
            nodes=job.nodes,
            cpus=job.cpus_per_node,
            memory_mb=job.memory_mb_per_node,
            gpu_model=job.gpu_model,
            time_limit_s=job.time_limit_s,
            preemptible=job.preemptible,
            priority=job.priority,
            network=Network(job.network),
            environment=job.environment,
            environment_key=job.environment_key,
            image=job.image,
            image_digest=job.image_digest,
            notify=job.notify,
            one_block=job.one_block,
            inputs=list(job.inputs or []),
            after_ok=_after(job.after, "ok"),
            after_any=_after(job.after, "any"),
            after_not_ok=_after(job.after, "not-ok"),
            array_id=job.array_id,
            array_index=job.array_index,
            array_throttle=job.array_throttle,
            idempotency_key=job.idempotency_key,
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            exit_code=job.exit_code,
            placement=_placement_out(job.placement),
            submitted_at=_iso(job.submitted_at),
            admitted_at=_iso(job.admitted_at),
            started_at=_iso(job.started_at),
            ended_at=_iso(job.ended_at),
        )


def _after(stored: list[Any] | None, kind: str) -> list[int]:
    """The jobs a job waits for in one way, from its stored dependencies."""
    return [int(d["job"]) for d in stored or () if d.get("after") == kind]


def _placement_out(placement: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """As stored, whether handed over typed (a job's view) or as stored (a new job's row)."""
    if not placement:
        return None
    return {
        node: share.stored() if isinstance(share, NodeShare) else share
        for node, share in placement.items()
    }


class JobEventOut(Response):
    at: datetime
    from_state: JobState | None
    to_state: JobState
    reason: str | None
    actor: str

    @classmethod
    def of(cls, event: Any) -> JobEventOut:
        return cls(
            at=_iso(event.at),
            from_state=event.from_state,
            to_state=event.to_state,
            reason=event.reason,
            actor=event.actor,
        )


class QueueInfo(BaseModel):
    position: int | None = Field(
        description="1 = next in line, counting every job in the facility; null: held"
    )
    held: bool = Field(
        False, description="HELD: out of the line until what the reason names releases it"
    )
    reason: str = Field(description="why the job is not running yet (held: what releases it)")
    estimated_start_at: datetime | None = Field(
        description="a cautious estimate: jobs ahead run to their limits, no backfill"
    )

    @classmethod
    def of(cls, explanation: Any) -> QueueInfo:
        return cls(
            position=explanation.position,
            held=explanation.held,
            reason=explanation.reason,
            estimated_start_at=_iso(explanation.estimated_start),
        )


class JobDetail(JobOut):
    events: list[JobEventOut]
    queue: QueueInfo | None = Field(
        None, description="for a PENDING or HELD job: why it waits, or what releases it"
    )


class QueuedJobOut(JobOut):
    queue: QueueInfo


class LogsOut(BaseModel):
    text: str
    offset: int
    size: int
    complete: bool


class OrganisationCreate(Request):
    name: Name
    kind: Annotated[OrgKind, Field(strict=False)]


class OrganisationOut(Response):
    id: int
    name: str
    kind: OrgKind


class ProjectCreate(Request):
    name: Name
    organisation: Name
    owner: Name | None = Field(None, description="the first owner; yourself if not given")


class ProjectOut(BaseModel):
    id: int
    name: str
    organisation: str
    role: ProjectRole | None = Field(None, description="your role in it")


class MemberAdd(Request):
    user: Name
    role: Annotated[ProjectRole, Field(strict=False)] = ProjectRole.MEMBER


class MemberOut(BaseModel):
    user: str
    role: ProjectRole


class UserCreate(Request):
    name: Name
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    facility_role: Annotated[FacilityRole, Field(strict=False)] = FacilityRole.USER
    token: bool = Field(True, description="also issue a first API token")


class UserOut(Response):
    id: int
    name: str
    email: str | None
    facility_role: FacilityRole


class MeOut(BaseModel):
    name: str
    facility_role: FacilityRole
    default_project: str | None
    projects: list[ProjectOut]


class TokenCreate(Request):
    name: Name = "cli"
    ttl_days: float | None = Field(
        None,
        ge=MIN_TTL_DAYS,
        le=MAX_TTL_DAYS,
        allow_inf_nan=False,
        description="days until it expires: at least one minute (1/1440 of a day), at most "
        "3650; none: it never expires",
    )
    user: Name | None = Field(None, description="admins only: issue for another user")


class PasswordChange(Request):
    current_password: str | None = Field(None, max_length=256, description="if you have one")
    new_password: str = Field(min_length=1, max_length=256)


class PasswordIssued(BaseModel):
    user: str
    password: str  # shown once


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            created_at=_iso(row.created_at),
            expires_at=_iso(row.expires_at),
            revoked_at=_iso(row.revoked_at),
        )


class TokenIssued(TokenOut):
    token: str = Field(description="shown once; only its hash is stored")


class UserCreated(UserOut):
    token: str | None = None


class NodeOut(Response):
    id: str
    site: str
    pool: str
    executor: str
    gpus: int
    gpu_model: str | None
    cpus: int
    memory_mb: int
    schedulable: bool = Field(description="offered by its executor and not drained")
    drain_reason: str | None = Field(None, description="why it is drained; None: it is not")
    drained_by: str | None = Field(None, description="the operator who drained it, or `health`")
    drained_at: float | None = Field(None, description="drained since (UNIX seconds)")
    health_problem: str | None = Field(
        None, description="what its latest health check found; None: it passed (or none ran)"
    )
    health_checked_at: float | None = Field(None, description="its latest health check")
    block: str | None = Field(
        None,
        description="its network block (leaf switch, NVLink domain), where multi-node jobs "
        "had best run; None: no topology declared",
    )


class NodeDrain(Request):
    reason: str = Field(
        min_length=1, max_length=500, description="why: shown wherever the node is shown"
    )


class SiteOut(BaseModel):
    name: str
    country: str = Field(description="ISO 3166-1 alpha-2: decides which data may go there")
    description: str
    nodes: int


class SiteChange(Request):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. NL")
    description: str | None = Field(None, max_length=500)


class FacilityOut(BaseModel):
    nodes: list[NodeOut]
    jobs_by_state: dict[str, int]
    admission_paused: bool


class AdmissionChange(Request):
    paused: bool


class Health(BaseModel):
    status: str
    version: str


class ErrorDetail(BaseModel):
    field: str | None
    reason: str


class ErrorOut(BaseModel):
    error: str
    message: str
    errors: list[ErrorDetail]
