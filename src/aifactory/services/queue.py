"""The queue as users see it: their waiting jobs, why each waits, and when it may start.

Computed on demand from a fresh snapshot (`scheduler.explain`), so the control loop writes
nothing for it. Positions count every job in the facility's queue; only visible jobs are listed.
HELD jobs (no budget, no data grant…) are listed after the line, marked held, with the reason
that says what releases them: they are the jobs users ask about most.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.control.snapshot import read_snapshot
from aifactory.domain.jobs import JobState
from aifactory.domain.permissions import Action
from aifactory.scheduler import Policy
from aifactory.scheduler.explain import Explanation, explain
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store import flags
from aifactory.store.models import Job

PAUSED = "admission is paused by the operators; "


@dataclass(frozen=True, slots=True)
class Queued:
    job: Job
    explanation: Explanation


def queue(
    session: Session,
    principal: Principal,
    *,
    now: float,
    project: str | None = None,
    limit: int = 200,
    policy: Policy | None = None,
) -> list[Queued]:
    explanations = _explanations(session, now, policy)
    waiting = [JobState.PENDING.value, JobState.HELD.value]
    stmt = select(Job).where(Job.state.in_(waiting))
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.JOB_READ)
        stmt = stmt.where(Job.project_id == found.id)
    visible = [j for j in session.scalars(stmt) if principal.may(Action.JOB_READ, j.project_id)]
    in_line = [Queued(j, explanations[j.id]) for j in visible if j.id in explanations]
    held = [Queued(j, held_explanation(j)) for j in visible if j.state == JobState.HELD.value]
    in_line.sort(key=lambda q: q.explanation.position or 0)
    return [*in_line, *sorted(held, key=lambda q: q.job.id)][:limit]


def held_explanation(job: Job) -> Explanation:
    return Explanation(job.id, None, job.state_reason or "held", None, held=True)


def explain_job(
    session: Session, job: Job, *, now: float, policy: Policy | None = None
) -> Explanation | None:
    """The explanation of one (already visible) job, if it is waiting or held."""
    if job.state == JobState.HELD.value:
        return held_explanation(job)
    if job.state != JobState.PENDING.value:
        return None
    return _explanations(session, now, policy).get(job.id)


def _explanations(session: Session, now: float, policy: Policy | None) -> dict[int, Explanation]:
    """`policy`: the facility's (default: the default policy)."""
    policy = policy if policy is not None else Policy()
    found = explain(read_snapshot(session, now, policy.half_life_s), now, policy)
    if not flags.admission_paused(session):
        return found
    return {
        i: Explanation(e.job_id, e.position, PAUSED + e.reason, e.estimated_start)
        for i, e in found.items()
    }
