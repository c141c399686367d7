"""Job rows: the one function that changes a job's state, and the queries around jobs.

`switch_job_state` is the only writer of `jobs.state`: it checks the move against
`domain.jobs.TRANSITIONS` and writes the `job_events` row in the same transaction. Every job in
a terminal state has an `ended_at`. `request_preemption` records the intent to preempt an active
job (and its event); the state itself moves only when the executor has seen the job stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import TERMINAL, JobState, check_transition
from aifactory.store import outbox
from aifactory.store.models import Job, JobEvent


def switch_job_state(
    session: Session,
    job: Job,
    target: JobState,
    *,
    now: float,
    actor: str,
    reason: str | None = None,
    **fields: Any,
) -> None:
    check_transition(job.id, JobState(job.state), target)
    session.add(
        JobEvent(
            job_id=job.id,
            at=now,
            from_state=job.state,
            to_state=target.value,
            reason=reason,
            actor=actor,
        )
    )
    job.state = target.value
    job.state_reason = reason
    job.updated_at = now
    for name, value in fields.items():
        setattr(job, name, value)
    if target in TERMINAL and job.ended_at is None:
        job.ended_at = now  # e.g. cancelled while waiting: it ended now
    if target in TERMINAL:
        outbox.tell_job_ended(session, job, now=now)  # in this transaction: never lost


def request_preemption(session: Session, job: Job, reason: str, *, now: float, actor: str) -> None:
    """Mark an active job to be preempted, durably and before anyone signals it (intent before
    action), with an event that names the reason; the job keeps its state until it has stopped."""
    job.preempt_requested_at = now
    job.preempt_reason = reason
    job.updated_at = now
    session.add(
        JobEvent(
            job_id=job.id,
            at=now,
            from_state=job.state,
            to_state=job.state,
            reason=f"preemption requested: {reason}",
            actor=actor,
        )
    )


@dataclass(slots=True)
class NewJob:
    """A job row before it is stored: plain values, far cheaper to build than an ORM object
    on the submit path. `insert_jobs` fills in `id`."""

    project_id: int
    user_id: int
    name: str
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    gpus_per_node: int
    nodes: int
    cpus_per_node: int
    memory_mb_per_node: int
    gpu_model: str | None
    time_limit_s: int
    preemptible: bool
    priority: int
    idempotency_key: str | None
    submitted_at: float
    state: str = JobState.PENDING.value
    state_reason: str | None = None
    placement: dict[str, Any] | None = None
    cancel_requested: bool = False
    preempt_requested_at: float | None = None
    preempt_reason: str | None = None
    attempts: int = 0
    exit_code: int | None = None
    admitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float = 0.0
    uses_datasets: bool = False
    countries: list[str] | None = None
    network: str = "none"
    inputs: list[int] | None = None
    after: list[Any] | None = None
    array_id: int | None = None
    array_index: int | None = None
    array_throttle: int | None = None
    environment: str | None = None
    environment_key: str | None = None
    image: str | None = None
    image_digest: str | None = None
    endpoint_id: int | None = None
    notify: bool = False
    one_block: bool = False
    id: int = 0


JOBS_TABLE: Table = Job.__table__  # type: ignore[assignment]
EVENTS_TABLE: Table = JobEvent.__table__  # type: ignore[assignment]
_JOB_COLUMNS = tuple(c.key for c in JOBS_TABLE.columns if c.key != "id")


def insert_jobs(session: Session, jobs: Sequence[NewJob], actors: Sequence[str]) -> None:
    """Insert new jobs and their first events with two bulk statements; sets each `job.id`.

    Core INSERT … RETURNING over the tables (one round trip for many rows), not the ORM's unit
    of work: submission is the hottest write path of the facility.
    """
    table, events = JOBS_TABLE, EVENTS_TABLE
    rows = [{c: getattr(job, c) for c in _JOB_COLUMNS} for job in jobs]
    returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = session.connection().execute(returning, rows).scalars().all()
    for job, job_id in zip(jobs, ids, strict=True):
        job.id = job_id
    session.connection().execute(
        insert(events),
        [
            {
                "job_id": job.id,
                "at": job.submitted_at,
                "from_state": None,
                "to_state": job.state,
                "reason": "submitted",
                "actor": actor,
            }
            for job, actor in zip(jobs, actors, strict=True)
        ],
    )


def lock_job(session: Session, job_id: int) -> Job | None:
    """Load a job for change; on PostgreSQL the row stays locked until commit."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def lock_in_order(session: Session, job_ids: Iterable[int]) -> None:
    """Lock these jobs' rows at once, in id order, before changing them one by one: two
    transactions that each lock many jobs (a round of the control loop, a cancel of many) then
    take them in the same order and cannot deadlock on PostgreSQL."""
    ids = sorted(set(job_ids))
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        session.execute(select(Job.id).where(Job.id.in_(part)).order_by(Job.id).with_for_update())


def jobs_in_states(session: Session, states: Sequence[JobState]) -> list[Job]:
    stmt = select(Job).where(Job.state.in_([s.value for s in states])).order_by(Job.id)
    return list(session.scalars(stmt))


def events_of(session: Session, job_id: int) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    )
