"""Finished jobs for the efficiency tests, made as the facility makes them: submitted through
the service, moved through their states by the one writer, and each attempt settled by
accounting.budget.settle from what an executor observed (its `usage` figures)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from aifactory.accounting.budget import settle
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.domain.placement import NodeShare
from aifactory.services.auth import principal_of
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job

T0 = 1_750_000_000.0
GB = 1024


@dataclass(frozen=True)
class Ran:
    """One attempt: how long it ran and what its executor observed of it."""

    wall_s: float
    observed: dict[str, float] = field(default_factory=dict)


def a_finished_job(
    db: Database,
    *,
    user: str,
    project: str,
    attempts: Sequence[Ran],
    end: JobState = JobState.SUCCEEDED,
    gpus: int = 0,
    cpus: int = 1,
    memory_mb: int = GB,
    time_limit_s: int = 3600,
    start: float = T0,
) -> int:
    """A job that ran `attempts` (all but the last preempted) and ended in `end`."""
    with db.session() as s:
        who = principal_of(s, user_by_name(s, user))
        spec = JobSpec(
            name="train",
            command=("train",),
            gpus_per_node=gpus,
            cpus_per_node=cpus,
            memory_mb_per_node=memory_mb,
            time_limit_s=time_limit_s,
        )
        made = submit_job(s, who, spec, project=project, idempotency_key=None, now=start)
        job = s.get(Job, made.job.id)
        assert job is not None
        share = NodeShare(gpus, cpus, memory_mb, tuple(str(i) for i in range(gpus)), (0,))
        at = start
        for number, ran in enumerate(attempts, 1):
            ends = end if number == len(attempts) else JobState.PREEMPTED
            _run(s, job, number, at, ran, ends, share)
            at += ran.wall_s + 1
        return job.id


def _run(
    s: Session, job: Job, number: int, at: float, ran: Ran, end: JobState, share: NodeShare
) -> None:
    placement = {"node-1": share.stored()}
    switch_job_state(
        s, job, JobState.ADMITTED, now=at, actor="test", placement=placement, attempts=number
    )
    switch_job_state(s, job, JobState.RUNNING, now=at, actor="test", started_at=at)
    ended = at + ran.wall_s
    switch_job_state(s, job, end, now=ended, actor="test")
    settle(s, job, attempt=number, started_at=at, ended_at=ended, observed=ran.observed, now=ended)
    if end is JobState.PREEMPTED:
        switch_job_state(s, job, JobState.PENDING, now=ended, actor="test", started_at=None)
