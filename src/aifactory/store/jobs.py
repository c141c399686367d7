"""Job rows: the one function that changes a job's state, and the queries around jobs.

`switch_job_state` is the only writer of `jobs.state`: it checks the move against
`domain.jobs.TRANSITIONS` and writes the `job_events` row in the same transaction. Every job in
a terminal state has an `ended_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import TERMINAL, JobState, check_transition
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


def record_submission(session: Session, job: Job, *, actor: str) -> None:
    """The first event of every job, written with its insert."""
    session.add(job)
    session.flush()
    session.add(
        JobEvent(
            job_id=job.id,
            at=job.submitted_at,
            from_state=None,
            to_state=job.state,
            reason="submitted",
            actor=actor,
        )
    )


def lock_job(session: Session, job_id: int) -> Job | None:
    """Load a job for change; on PostgreSQL the row stays locked until commit."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def jobs_in_states(session: Session, states: Sequence[JobState]) -> list[Job]:
    stmt = select(Job).where(Job.state.in_([s.value for s in states])).order_by(Job.id)
    return list(session.scalars(stmt))


def events_of(session: Session, job_id: int) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    )
