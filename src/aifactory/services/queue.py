"""The queue as users see it: their waiting jobs, why each waits, and when it may start.

The verdicts are the control loop's (scheduler.verdict.decide, kept in job_verdicts by
control.verdicts), so `queue`, `show`, the job page and the API say what the facility decided,
and a read costs a few indexed rows however deep the queue is. Positions count every job in
the facility's line; only visible jobs are listed. The line comes first, then jobs submitted
since the last round (not judged yet), then HELD jobs (no budget, no data grant…) with what
releases them: they are the jobs users ask about most.

Before any control loop has kept a round (a facility that never ran one, the API alone in
tests) the verdicts are worked out on the spot by the same pure rules (`judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from aifactory.control.snapshot import read_snapshot
from aifactory.domain.jobs import JobState
from aifactory.domain.permissions import Action
from aifactory.scheduler import Policy
from aifactory.scheduler.explain import Explanation
from aifactory.scheduler.verdict import judge
from aifactory.services.job_view import JobView, views_of
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store import flags
from aifactory.store import verdicts as kept
from aifactory.store.models import Job, JobVerdict

PAUSED = "admission is paused by the operators; "
NOT_JUDGED = (
    "submitted since the last scheduling round: its place in line is worked out at the next"
)


@dataclass(frozen=True, slots=True)
class Queued:
    job: JobView
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
    scope = _scope(session, principal, project)
    if kept.decided_at(session) is None:
        found = _judged_now(session, scope, now, limit, policy)
    else:
        paused = flags.admission_paused(session)
        found = [(job, _in_line(v, paused)) for job, v in _line(session, scope, limit)]
        if len(found) < limit:
            found += [
                (job, _aside(job, v, paused)) for job, v in _aside_line(session, scope, limit)
            ]
        if len(found) < limit:
            found += [(job, _held(job, v)) for job, v in _holds(session, scope, limit)]
    found = found[:limit]
    views = views_of(session, [job for job, _ in found])
    return [Queued(view, why) for view, (_, why) in zip(views, found, strict=True)]


def explain_job(
    session: Session, job: JobView, *, now: float, policy: Policy | None = None
) -> Explanation | None:
    """The verdict on one (already visible) job, if it is waiting or held."""
    if job.state not in (JobState.PENDING.value, JobState.HELD.value):
        return None
    if kept.decided_at(session) is None:
        return _judge(session, now, policy).get(job.id) or _held(job, None)
    verdict = session.get(JobVerdict, job.id)
    if job.state == JobState.HELD.value:
        return _held(job, verdict)
    return _aside(job, verdict, flags.admission_paused(session))


def _scope(session: Session, principal: Principal, project: str | None) -> ColumnElement[bool]:
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.JOB_READ)
        return Job.project_id == found.id
    projects = principal.projects_for(Action.JOB_READ)
    return true() if projects is None else Job.project_id.in_(projects)


def _line(
    session: Session, scope: ColumnElement[bool], limit: int
) -> Sequence[tuple[Job, JobVerdict]]:
    """Walks the verdicts' line index in order and stops at `limit`."""
    stmt = (
        select(Job, JobVerdict)
        .join(JobVerdict, JobVerdict.job_id == Job.id)
        .where(
            JobVerdict.held.is_(False),
            JobVerdict.position.is_not(None),
            Job.state == JobState.PENDING.value,
            scope,
        )
        .order_by(JobVerdict.held, JobVerdict.position, JobVerdict.job_id)
        .limit(limit)
    )
    return [(job, verdict) for job, verdict in session.execute(stmt)]


def _aside_line(
    session: Session, scope: ColumnElement[bool], limit: int
) -> list[tuple[Job, JobVerdict | None]]:
    """Waiting jobs the last round did not place in line: those it kept aside (an array at its
    limit) and those it did not see (submitted or released since)."""
    stmt = (
        select(Job, JobVerdict)
        .outerjoin(JobVerdict, JobVerdict.job_id == Job.id)
        .where(
            Job.state == JobState.PENDING.value,
            or_(JobVerdict.job_id.is_(None), JobVerdict.position.is_(None)),
            scope,
        )
        .order_by(Job.id)
        .limit(limit)
    )
    return [(job, verdict) for job, verdict in session.execute(stmt)]


def _aside(job: Job | JobView, verdict: JobVerdict | None, paused: bool) -> Explanation:
    if verdict is None or verdict.held:
        return _not_judged(job)
    return _in_line(verdict, paused)


def _holds(
    session: Session, scope: ColumnElement[bool], limit: int
) -> Sequence[tuple[Job, JobVerdict | None]]:
    stmt = (
        select(Job, JobVerdict)
        .outerjoin(JobVerdict, and_(JobVerdict.job_id == Job.id, JobVerdict.held.is_(True)))
        .where(Job.state == JobState.HELD.value, scope)
        .order_by(Job.id)
        .limit(limit)
    )
    return [(job, verdict) for job, verdict in session.execute(stmt)]


def _in_line(verdict: JobVerdict, paused: bool) -> Explanation:
    reason = (PAUSED if paused else "") + verdict.reason
    return Explanation(verdict.job_id, verdict.position, reason, verdict.estimated_start)


def _held(job: Job | JobView, verdict: JobVerdict | None) -> Explanation:
    """The round's reason if it judged the job held (it says what holds it now), else the
    reason it was held with."""
    reason = verdict.reason if verdict is not None and verdict.held else job.state_reason
    return Explanation(job.id, None, reason or "held", None, held=True)


def _not_judged(job: Job | JobView) -> Explanation:
    return Explanation(job.id, None, NOT_JUDGED, None)


# ---- before any round was kept ------------------------------------------------------------


def _judged_now(
    session: Session,
    scope: ColumnElement[bool],
    now: float,
    limit: int,
    policy: Policy | None,
) -> list[tuple[Job, Explanation]]:
    verdicts = _judge(session, now, policy)
    waiting = or_(Job.state == JobState.PENDING.value, Job.state == JobState.HELD.value)
    jobs = session.scalars(select(Job).where(waiting, scope))
    found = [
        (job, verdicts.get(job.id) or _held(job, None))
        for job in jobs
        if job.state == JobState.HELD.value or job.id in verdicts
    ]
    found.sort(key=lambda q: (q[1].held, q[1].position or 0, q[0].id))
    return found[:limit]


def _judge(session: Session, now: float, policy: Policy | None) -> dict[int, Explanation]:
    policy = policy if policy is not None else Policy()
    verdicts = judge(read_snapshot(session, now, policy.half_life_s), policy, now)
    if not flags.admission_paused(session):
        return verdicts
    return {
        i: Explanation(e.job_id, e.position, PAUSED + e.reason, e.estimated_start, e.held)
        for i, e in verdicts.items()
    }
