"""Rows for the usage, invoice and report tests, written straight into the store.

`Metered` attempts come with what the control loop would have written with them: the job's
events (submitted, admitted, running, ended), the usage record with known cents and its
paying programme's terms, and for an attempt an allocation paid, its reserve, release and
settle ledger entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import JobState
from aifactory.domain.ledger import EntryKind, entry_key
from aifactory.domain.money import ms_of_seconds
from aifactory.store.models import (
    Allocation,
    Job,
    JobEvent,
    LedgerEntry,
    Programme,
    UsageRecord,
)

H = 3600.0


def a_programme(session: Session, name: str = "pilot", *, subsidy_pct: int = 50) -> Programme:
    """€ 2.50 per GPU-hour, € 0.02 per CPU-hour; no capacity share (the bootstrap's five
    programmes already share the whole facility)."""
    programme = Programme(
        name=name,
        title=f"{name} programme",
        eligible_kinds=["university", "startup"],
        gpu_tariffs={"*": "2.50"},
        cpu_tariff="0.02",
        subsidy_pct=subsidy_pct,
        priority_weight=10,
        preemptible_default=False,
        max_gpus_per_job=None,
        capacity_share=0.0,
        starter_gpu_hours=0.0,
        starter_days=30,
        created_at=0.0,
    )
    session.add(programme)
    session.flush()
    return programme


def an_allocation(session: Session, name: str, *, project_id: int, programme_id: int) -> Allocation:
    allocation = Allocation(
        name=name,
        project_id=project_id,
        programme_id=programme_id,
        proposal_id=None,
        award_gpu_s=1_000_000,
        gpu_model=None,
        quota_gpus=0,
        valid_from=0.0,
        valid_to=4e9,
        created_by="test",
        created_at=0.0,
    )
    session.add(allocation)
    session.flush()
    return allocation


def a_job(session: Session, *, project_id: int, user_id: int, submitted_at: float) -> Job:
    job = Job(
        project_id=project_id,
        user_id=user_id,
        name="train",
        command=["train"],
        env={},
        working_dir=None,
        gpus_per_node=1,
        nodes=1,
        cpus_per_node=1,
        memory_mb_per_node=1024,
        gpu_model=None,
        time_limit_s=86400,
        preemptible=True,
        priority=0,
        idempotency_key=None,
        state=JobState.PENDING.value,
        submitted_at=submitted_at,
        updated_at=submitted_at,
    )
    session.add(job)
    session.flush()
    event(session, job, None, JobState.PENDING, submitted_at)
    return job


def event(session: Session, job: Job, before: JobState | None, after: JobState, at: float) -> None:
    session.add(
        JobEvent(
            job_id=job.id,
            at=at,
            from_state=before.value if before else None,
            to_state=after.value,
            reason="test",
            actor="test",
        )
    )
    session.flush()


@dataclass(frozen=True)
class Metered:
    """One attempt as metering and settlement record it."""

    started_at: float
    ended_at: float
    gpus: int
    cpus: int
    gpu_cents: int
    cpu_cents: int
    subsidy_cents: int
    energy_j: float
    measured: bool = True
    admitted_at: float | None = None  # default: at the start
    booked_at: float | None = None  # when it was settled; default: at the end

    @property
    def gpu_ms(self) -> int:
        return self.gpus * ms_of_seconds(self.ended_at - self.started_at)

    @property
    def cpu_ms(self) -> int:
        return self.cpus * ms_of_seconds(self.ended_at - self.started_at)


def run_attempt(
    session: Session,
    job: Job,
    attempt: int,
    used: Metered,
    allocation: Allocation | None,
    *,
    end_state: JobState = JobState.SUCCEEDED,
) -> UsageRecord:
    """Admit, start and end one attempt of `job`, metered as `used` and paid by `allocation`."""
    admitted = used.started_at if used.admitted_at is None else used.admitted_at
    event(session, job, JobState.PENDING, JobState.ADMITTED, admitted)
    programme = session.get(Programme, allocation.programme_id) if allocation else None
    if allocation is not None:
        reserved = -used.gpus * 86400 * 1000
        _post(session, allocation, job, attempt, EntryKind.RESERVE, reserved, admitted)
    event(session, job, JobState.ADMITTED, JobState.RUNNING, used.started_at)
    event(session, job, JobState.RUNNING, end_state, used.ended_at)
    record = UsageRecord(
        job_id=job.id,
        attempt=attempt,
        project_id=job.project_id,
        allocation_id=allocation.id if allocation else None,
        gpu_model="h100",
        gpus=used.gpus,
        cpus=used.cpus,
        started_at=used.started_at,
        ended_at=used.ended_at,
        gpu_ms=used.gpu_ms,
        cpu_ms=used.cpu_ms,
        energy_j=used.energy_j,
        energy_measured=used.measured,
        gpu_price=programme.gpu_tariffs["*"] if programme else "0",
        cpu_price=programme.cpu_tariff if programme else "0",
        subsidy_pct=programme.subsidy_pct if programme else 0,
        gpu_cents=used.gpu_cents,
        cpu_cents=used.cpu_cents,
        subsidy_cents=used.subsidy_cents,
        booked_at=used.ended_at if used.booked_at is None else used.booked_at,
    )
    session.add(record)
    if allocation is not None:
        released = used.gpus * 86400 * 1000
        _post(session, allocation, job, attempt, EntryKind.RELEASE, released, used.ended_at)
        _post(
            session,
            allocation,
            job,
            attempt,
            EntryKind.SETTLE,
            -used.gpu_ms,
            used.ended_at,
            cost_cents=used.gpu_cents + used.cpu_cents,
            subsidy_cents=used.subsidy_cents,
        )
    if end_state is JobState.PREEMPTED:
        event(session, job, JobState.PREEMPTED, JobState.PENDING, used.ended_at)
    session.flush()
    return record


def _post(
    session: Session,
    allocation: Allocation,
    job: Job,
    attempt: int,
    kind: EntryKind,
    gpu_ms: int,
    at: float,
    *,
    cost_cents: int = 0,
    subsidy_cents: int = 0,
) -> None:
    session.add(
        LedgerEntry(
            key=entry_key(kind, job.id, attempt),
            allocation_id=allocation.id,
            job_id=job.id,
            attempt=attempt,
            kind=kind.value,
            gpu_ms=gpu_ms,
            cost_cents=cost_cents,
            subsidy_cents=subsidy_cents,
            at=at,
            actor="test",
            reason="test",
        )
    )


def lab_pilot(session: Session) -> Allocation:
    """The allocation `lab-pilot` of the test world."""
    return session.scalars(select(Allocation).where(Allocation.name == "lab-pilot")).one()
