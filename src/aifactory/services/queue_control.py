"""Queue control: a person holds, releases and updates waiting jobs, and cancels many at once.

Words and invariants:
- A *person's hold* is HELD with the reason "held by <user>" (and ": <why>" when given). The
  control loop's round releases only the holds it made itself, for data ("data: …") and for
  money ("no budget: …": scheduler.admission.releasable); a person's hold waits for a person,
  and the loop's holds are released by the loop alone, once what held the job is mended.
- Whoever may cancel a job (`job.cancel`) may hold, release and update it; a hold that an
  operator or admin made is released only by an operator or admin.
- An update changes only a waiting job, within what a submission may ask: a priority above 0
  is `job.prioritise`'s (as at submission); a time limit within the facility's maximum (the
  input types'); programmes set no time limit of their own.
- Many jobs are cancelled in one call and answered job by job; a job the caller may not see is
  "not found", exactly as one that does not exist.
Every change is audited: `job.hold`, `job.release`, `job.update` (from, to), `job.cancel`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import DATA_HOLD
from aifactory.domain.jobs import ACTIVE, TERMINAL, WAITING, JobState
from aifactory.domain.permissions import MATRIX, Action, who_may
from aifactory.domain.tenancy import FacilityRole
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.governance import audit
from aifactory.scheduler.admission import BUDGET_HOLD
from aifactory.services.job_view import JobView, view_of, views_of
from aifactory.services.jobs import withdraw
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.jobs import lock_job, switch_job_state
from aifactory.store.models import Job, User

PERSON_HOLD = "held by "
MAX_AT_ONCE = 1000  # jobs one bulk cancel may touch: a bigger selection is narrowed first
_FACILITY_HOLDERS = frozenset({FacilityRole.ADMIN, FacilityRole.OPERATOR})
_UNTIL_RELEASED = {
    DATA_HOLD: "the control loop releases it once its project may read its datasets again "
    "(a grant: aifactory datasets grant)",
    BUDGET_HOLD: "the control loop releases it once an allocation of its project can pay for "
    "it (aifactory allocations adjust, by an admin or finance)",
}


# ---- hold and release -------------------------------------------------------------------------
def hold_job(
    session: Session, principal: Principal, job_id: int, *, reason: str | None, now: float
) -> JobView:
    """Keep a waiting job out of every round until a person releases it."""
    job = _for_change(session, principal, job_id)
    if job.state != JobState.PENDING.value:
        raise Conflict(_why_not_held(job), field="job_id")
    said = f"{PERSON_HOLD}{principal.name}" + (f": {reason}" if reason else "")
    switch_job_state(session, job, JobState.HELD, now=now, actor=principal.name, reason=said)
    _audit(session, principal, job, "job.hold", now, {"reason": reason})
    return view_of(session, job)


def release_job(session: Session, principal: Principal, job_id: int, *, now: float) -> JobView:
    """Put a person's hold back in line; the loop's own holds are not a person's to lift."""
    job = _for_change(session, principal, job_id)
    if job.state != JobState.HELD.value:
        raise Conflict(f"job {job_id} is {job.state}: only a held job is released", field="job_id")
    hold = job.state_reason or ""
    if not hold.startswith(PERSON_HOLD):
        raise Conflict(_what_releases(job_id, hold), field="job_id")
    _check_holder(session, principal, job_id, hold)
    switch_job_state(
        session,
        job,
        JobState.PENDING,
        now=now,
        actor=principal.name,
        reason=f"released by {principal.name}",
    )
    _audit(session, principal, job, "job.release", now, {"hold": hold})
    return view_of(session, job)


def held_by_a_person(job: JobView) -> bool:
    """Whether a person's hold keeps the job (one that a person may release)."""
    return job.state == JobState.HELD.value and (job.state_reason or "").startswith(PERSON_HOLD)


def _why_not_held(job: Job) -> str:
    if job.state == JobState.HELD.value:
        return f"job {job.id} is already held ({job.state_reason or 'no reason given'})"
    return f"job {job.id} is {job.state}: only a waiting (PENDING) job can be held"


def _what_releases(job_id: int, hold: str) -> str:
    for prefix, until in _UNTIL_RELEASED.items():
        if hold.startswith(prefix):
            return f"job {job_id} is held by the facility ({hold}): {until}"
    return f"job {job_id} is held by the facility ({hold or 'no reason given'})"


def _check_holder(session: Session, principal: Principal, job_id: int, hold: str) -> None:
    """An operator's or admin's hold (say, of a job that strains the facility) is theirs to
    lift: the project's own members may not overrule it."""
    name = hold.removeprefix(PERSON_HOLD).partition(":")[0]  # names hold no ':' (domain.names)
    holder = session.scalars(select(User).where(User.name == name)).first()
    if holder is None or FacilityRole(holder.facility_role) not in _FACILITY_HOLDERS:
        return
    if principal.facility_role not in _FACILITY_HOLDERS:
        raise PermissionDenied(
            f"job {job_id} was held by {holder.facility_role} {name}: only an admin or "
            "operator may release it",
            field="job_id",
        )


# ---- update -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobChanges:
    """What an update asks for; None leaves a field as it is."""

    name: str | None = None
    time_limit_s: int | None = None
    priority: int | None = None


def update_job(
    session: Session, principal: Principal, job_id: int, changes: JobChanges, *, now: float
) -> JobView:
    """Change a waiting job's name, time limit or priority; asking for what it has already
    changes nothing and records nothing."""
    job = _for_change(session, principal, job_id)
    if JobState(job.state) not in WAITING:
        raise Conflict(
            f"job {job_id} is {job.state}: only a waiting job (PENDING or HELD) is updated",
            field="job_id",
        )
    moved = _moved(job, changes)
    if changes.priority is not None and "priority" in moved and changes.priority > 0:
        # as at submission: above 0 would put the project ahead of those fair share serves
        principal.authorize(Action.JOB_PRIORITISE, job.project_id, what="job", field="priority")
    if not moved:
        return view_of(session, job)
    before = {f: getattr(job, f) for f in moved}
    for field, value in moved.items():
        setattr(job, field, value)
    job.updated_at = now
    _audit(session, principal, job, "job.update", now, {"from": before, "to": moved})
    return view_of(session, job)


def _moved(job: Job, changes: JobChanges) -> dict[str, str | int]:
    """The fields the update changes, with their new values."""
    asked: dict[str, str | int | None] = {
        "name": changes.name,
        "time_limit_s": changes.time_limit_s,
        "priority": changes.priority,
    }
    return {f: v for f, v in asked.items() if v is not None and v != getattr(job, f)}


# ---- many cancelled at once -------------------------------------------------------------------
class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"  # it was waiting: it ended now
    STOPPING = "stopping"  # it was running: the control loop stops it
    ALREADY_ENDED = "already ended"
    NOT_FOUND = "not found"  # missing, or not the caller's to see
    REFUSED = "refused"  # seen, but not the caller's to cancel


@dataclass(frozen=True, slots=True)
class Selection:
    """Which jobs: named ids, or every job not ended that the caller may cancel and that
    matches all the filters given. Never both, never neither."""

    ids: tuple[int, ...] = ()
    states: tuple[JobState, ...] = ()
    name_contains: str | None = None
    mine: bool = False
    project: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.states or self.name_contains or self.mine or self.project)


@dataclass(frozen=True, slots=True)
class CancelResult:
    job_id: int
    outcome: CancelOutcome
    message: str
    job: JobView | None  # as it is after (or, on a dry run, before); None: not found


def cancel_jobs(
    session: Session,
    principal: Principal,
    selection: Selection,
    *,
    now: float,
    dry_run: bool = False,
) -> list[CancelResult]:
    """Cancel the selected jobs, each on its own: one that ended, or that the caller may not
    cancel, is answered as such and leaves the others to go on. A dry run says what would
    happen and changes nothing."""
    _check(selection)
    if selection.ids:
        ids = list(dict.fromkeys(selection.ids))
        rows = {job.id: job for job in _locked(session, ids)}
    else:
        found = _matching(session, principal, selection)
        ids, rows = [job.id for job in found], {job.id: job for job in found}
    decided = [(i, _decide(principal, rows.get(i))) for i in ids]
    if not dry_run:
        ended = [rows[i] for i, outcome in decided if outcome in _CHANGES]
        _carry_out(session, principal, ended, now)
    views = {view.id: view for view in views_of(session, rows.values())}
    return [_result(i, outcome, views.get(i)) for i, outcome in decided]


_CHANGES = frozenset({CancelOutcome.CANCELLED, CancelOutcome.STOPPING})


def _check(selection: Selection) -> None:
    if selection.ids and selection.filtered:
        raise InvalidInput("give job ids or filters, not both", field="ids")
    if not selection.ids and not selection.filtered:
        raise InvalidInput(
            "give job ids, or at least one filter (states, name, mine, project)", field="ids"
        )
    if ended := [s.value for s in selection.states if s in TERMINAL]:
        raise InvalidInput(f"{', '.join(ended)}: an ended job is not cancelled", field="states")


def _locked(session: Session, ids: Sequence[int]) -> list[Job]:
    """The named jobs that exist, locked in id order (PostgreSQL) so that two bulk cancels
    never wait on each other crosswise."""
    stmt = select(Job).where(Job.id.in_(ids)).order_by(Job.id).with_for_update()
    return list(session.scalars(stmt))


def _matching(session: Session, principal: Principal, selection: Selection) -> list[Job]:
    """Jobs not ended, in projects where the caller may cancel, matching every filter."""
    states = selection.states or tuple(s for s in JobState if s not in TERMINAL)
    stmt = select(Job).where(Job.state.in_([s.value for s in states]))
    if selection.project is not None:
        project = project_by_name(session, principal, selection.project, action=Action.JOB_CANCEL)
        stmt = stmt.where(Job.project_id == project.id)
    elif (projects := principal.projects_for(Action.JOB_CANCEL)) is not None:
        stmt = stmt.where(Job.project_id.in_(projects))
    if selection.mine:
        stmt = stmt.where(Job.user_id == principal.user_id)
    if selection.name_contains:
        stmt = stmt.where(Job.name.icontains(selection.name_contains, autoescape=True))
    found = list(session.scalars(stmt.order_by(Job.id).limit(MAX_AT_ONCE + 1).with_for_update()))
    if len(found) > MAX_AT_ONCE:
        raise InvalidInput(
            f"more than {MAX_AT_ONCE} jobs match: narrow the filters (at most {MAX_AT_ONCE} "
            "at once)",
            field="states",
        )
    return found


def _decide(principal: Principal, job: Job | None) -> CancelOutcome:
    if job is None or not principal.may(Action.JOB_READ, job.project_id):
        return CancelOutcome.NOT_FOUND
    if not principal.may(Action.JOB_CANCEL, job.project_id):
        return CancelOutcome.REFUSED
    state = JobState(job.state)
    if state in TERMINAL:
        return CancelOutcome.ALREADY_ENDED
    return CancelOutcome.STOPPING if state in ACTIVE else CancelOutcome.CANCELLED


def _carry_out(session: Session, principal: Principal, jobs: list[Job], now: float) -> None:
    """End or stop each job, with one `job.cancel` event each (in one append: one chain
    lock). A running job already being stopped is not recorded twice."""
    recorded = []
    for job in jobs:
        before = job.state
        if JobState(before) in ACTIVE and job.cancel_requested:
            continue
        withdraw(session, job, actor=principal.name, now=now)
        recorded.append(_event(principal, job, "job.cancel", {"state": before}))
    audit.append(session, recorded, at=now)


def _result(job_id: int, outcome: CancelOutcome, job: JobView | None) -> CancelResult:
    shown = job if outcome is not CancelOutcome.NOT_FOUND else None
    return CancelResult(job_id, outcome, _say(job_id, outcome, shown), shown)


def _say(job_id: int, outcome: CancelOutcome, job: JobView | None) -> str:
    if outcome is CancelOutcome.ALREADY_ENDED and job is not None:
        return f"job {job_id} already ended ({job.state})"
    if outcome is CancelOutcome.REFUSED:
        rule = MATRIX[Action.JOB_CANCEL]
        return f"job {job_id}: only {who_may(Action.JOB_CANCEL)} may {rule.why}"
    return {
        CancelOutcome.CANCELLED: f"job {job_id} cancelled",
        CancelOutcome.STOPPING: f"job {job_id} is being stopped",
        CancelOutcome.NOT_FOUND: f"job {job_id} not found",
    }.get(outcome, f"job {job_id} {outcome.value}")


# ---- shared -----------------------------------------------------------------------------------
def _for_change(session: Session, principal: Principal, job_id: int) -> Job:
    """The job, locked, if the caller may cancel it: 404 for one they may not see, 403 for one
    they see but may not change."""
    job = lock_job(session, job_id)  # read under the lock: the state checked is the state changed
    if job is None or not principal.may(Action.JOB_READ, job.project_id):
        raise NotFound(f"job {job_id} not found", field="job_id")
    principal.authorize(Action.JOB_CANCEL, job.project_id, what="job", seen=True)
    return job


def _event(principal: Principal, job: Job, action: str, detail: dict[str, Any]) -> audit.NewEvent:
    return audit.NewEvent(
        actor=principal.name,
        action=action,
        object=f"job:{job.id}",
        source=principal.source,
        project_id=job.project_id,
        detail=detail,
    )


def _audit(
    session: Session,
    principal: Principal,
    job: Job,
    action: str,
    now: float,
    detail: dict[str, Any],
) -> None:
    audit.record(
        session,
        actor=principal.name,
        action=action,
        object=f"job:{job.id}",
        at=now,
        source=principal.source,
        project_id=job.project_id,
        detail=detail,
    )
