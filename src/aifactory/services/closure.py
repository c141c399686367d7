"""Closing a project for good (admins), and reading its closure and certificate.

Asking records the closure `closing` and, in the same transaction: cancels the project's
waiting jobs, asks its active jobs (and other projects' jobs reading its datasets) to stop,
revokes every grant given to it or by it, and records an erasure (trigger closure) of every
present version of its datasets. The control loop finishes it (governance.closure): once no
such job runs and every erasure is done, it removes the project's job directories and stores
the report and certificate (`closed`).

The rule for running jobs: refused (409, naming them) while any of those jobs is active, unless
asked to `stop_running_jobs`. A closing or closed project takes no new jobs (`is_closed`).
Closures are read by whoever reads erasures in the project (admins, auditors, its owners).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.erasure import ClosureState, running_jobs_message
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.governance.closure import (
    closure_reason,
    erase_datasets,
    is_closed,
    present_versions_of,
    revoke_grants,
)
from aifactory.governance.removal import (
    active_jobs_of,
    active_jobs_using,
    cancel_waiting_jobs,
    stop_jobs,
)
from aifactory.services.principal import Principal
from aifactory.store.models import Project, ProjectClosure

__all__ = ["ClosureView", "close_project", "closure_certificate", "get_closure", "is_closed"]
MAX_REASON = 20_000


@dataclass(frozen=True, slots=True)
class ClosureView:
    closure: ProjectClosure
    project: str

    @property
    def reason(self) -> str:
        return closure_reason(self.closure)


def close_project(
    session: Session,
    principal: Principal,
    *,
    project: str,
    reason: str,
    stop_running_jobs: bool,
    now: float,
) -> ClosureView:
    found = project_for(session, principal, project, Action.PROJECT_CLOSE)
    why = _reason(reason)
    closure = _claim(session, found, principal, why, now)
    versions = present_versions_of(session, found.id)
    running = {j.id: j for j in active_jobs_of(session, found.id)}
    running |= {j.id: j for j in active_jobs_using(session, [v.id for v, _ in versions])}
    if running and not stop_running_jobs:
        raise Conflict(
            running_jobs_message(
                f"project {found.name}",
                list(running),
                relation="has",
                then="the closure finishes",
            ),
            field="stop_running_jobs",
        )
    said = f"project {found.name} is closed: {why}"
    stopped = stop_jobs(
        session, running.values(), why=said, now=now, actor=principal.name, source=principal.source
    )
    cancelled = cancel_waiting_jobs(session, found.id, why=said, now=now, actor=principal.name)
    revoked = revoke_grants(session, found.id, by=principal.name, why=said, now=now)
    erasures = erase_datasets(
        session, versions, by=principal.name, why=said, now=now, source=principal.source
    )
    closure.report = {
        "reason": why,
        "stopped_jobs": stopped.job_ids,
        "cancelled_jobs": cancelled.job_ids,
    }
    event = audit.NewEvent(
        actor=principal.name,
        action="project.close",
        object=f"project:{found.name}",
        source=principal.source,
        project_id=found.id,
        detail={
            "state": ClosureState.CLOSING.value,
            "reason": why,
            "stopped_jobs": stopped.job_ids,
            "cancelled_jobs": cancelled.job_ids,
            "revoked_grants": len(revoked),
            "erasures": len(erasures),
        },
    )
    audit.append(session, [*stopped.events, *cancelled.events, *revoked, *erasures, event], at=now)
    return ClosureView(closure, found.name)


def project_for(session: Session, principal: Principal, name: str, action: Action) -> Project:
    """The project named `name` if the principal may do `action` there (an auditor may read a
    closure without being a member): 404 for whoever neither may nor sees it, else 403."""
    principal.refuse_early(action)
    stmt = select(Project).where(Project.name == name)
    found = None if "\x00" in name else session.scalars(stmt).first()
    if found is None:
        raise NotFound("project not found", field="project")  # as authorize says it
    principal.authorize(action, found.id)
    return found


def _claim(
    session: Session, project: Project, principal: Principal, reason: str, now: float
) -> ProjectClosure:
    """Record the closure first: a second request, even a concurrent one, is refused (409)."""
    closure = ProjectClosure(
        project_id=project.id,
        requested_by=principal.name,
        requested_at=now,
        state=ClosureState.CLOSING.value,
        report={"reason": reason},
    )
    try:
        with session.begin_nested():
            session.add(closure)
    except IntegrityError as exc:
        earlier = session.get(ProjectClosure, project.id)
        state = earlier.state if earlier else "closing"
        raise Conflict(f"project {project.name} is {state} already", field="project") from exc
    return closure


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidInput("say why the project is closed", field="reason")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"at most {MAX_REASON} characters", field="reason")
    return text


def get_closure(session: Session, principal: Principal, *, project: str) -> ClosureView:
    found = project_for(session, principal, project, Action.ERASURE_READ)
    closure = session.get(ProjectClosure, found.id)
    if closure is None:
        raise NotFound(f"project {found.name} is not closed", field="project")
    return ClosureView(closure, found.name)


def closure_certificate(session: Session, principal: Principal, *, project: str) -> bytes:
    view = get_closure(session, principal, project=project)
    if view.closure.certificate_pdf is None:
        raise Conflict(
            f"project {view.project} is still closing: its certificate is issued once it is closed",
            field="project",
        )
    return view.closure.certificate_pdf
