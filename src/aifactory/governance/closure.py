"""Project closure: a project ended for good, its data erased, with a certificate.

A closure is asked for once (services.closure): in that transaction the project's waiting jobs
are cancelled, its active jobs (and other projects' jobs reading its datasets) are asked to
stop, every grant given to it or by it is revoked, every present version of its datasets gets
an erasure (trigger closure) and the closure is recorded `closing`. The control loop then
finishes it (`advance_closures`, called by governance.erasure.advance) in three steps, each
safe to run again after a crash:
1. `settle_closure` (one transaction): deal with stragglers (a job or a version that slipped in
   while the closure was asked for) and tell whether the closure can finish: no job of the
   project active, every erasure of its datasets done.
2. `remove_job_dirs` (no transaction): remove each of the project's job directories.
3. `finish_closure` (one transaction): report, certificate, state closed, audit event.

While closing, `report` holds only what was decided when the closure was asked for (its
reason); once closed, the full report.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import ErasureTrigger, VersionState
from aifactory.domain.erasure import ClosureState, ErasureState, check_closure_transition
from aifactory.domain.erasure import report_digest as digest_of
from aifactory.governance import audit, certificates
from aifactory.governance.removal import (
    OPEN_STATES,
    OutsideRoot,
    Remover,
    active_jobs_of,
    cancel_waiting_jobs,
    has_open_erasure,
    iso,
    record_erasure,
    remove_tree,
    request_event,
    stop_jobs,
)
from aifactory.store.db import Database
from aifactory.store.models import (
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Erasure,
    Job,
    Member,
    Organisation,
    Project,
    ProjectClosure,
    User,
)

log = logging.getLogger("aifactory.closure")
ACTOR = "control"


def is_closed(session: Session, project_id: int) -> bool:
    """Whether the project is closing or closed: it takes no new work or data from then on."""
    stmt = select(ProjectClosure.project_id).where(ProjectClosure.project_id == project_id)
    return session.scalar(stmt) is not None


def closure_reason(closure: ProjectClosure) -> str:
    return str((closure.report or {}).get("reason", ""))


# ---- what asking for a closure does (also to stragglers) -------------------------------------


def revoke_grants(
    session: Session, project_id: int, *, by: str, why: str, now: float
) -> list[audit.NewEvent]:
    """Revoke every live grant given to the project, or on a dataset it owns."""
    owned = select(Dataset.id).where(Dataset.owner_project_id == project_id)
    stmt = (
        select(DatasetGrant, Dataset.name)
        .join(Dataset, Dataset.id == DatasetGrant.dataset_id)
        .where(
            DatasetGrant.revoked_at.is_(None),
            or_(DatasetGrant.project_id == project_id, DatasetGrant.dataset_id.in_(owned)),
        )
        .order_by(DatasetGrant.id)
        .with_for_update(of=DatasetGrant)
    )
    events = []
    for grant, dataset in session.execute(stmt):
        grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, by, why
        events.append(
            audit.NewEvent(
                actor=by,
                action="dataset.revoke",
                object=f"dataset:{dataset}",
                project_id=grant.project_id,
                detail={"grant": grant.id, "project_id": grant.project_id, "reason": why},
            )
        )
    return events


def present_versions_of(session: Session, project_id: int) -> list[tuple[DatasetVersion, Dataset]]:
    """Present versions of the project's datasets that no erasure is yet under way for."""
    stmt = (
        select(DatasetVersion, Dataset)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(
            Dataset.owner_project_id == project_id,
            DatasetVersion.state == VersionState.PRESENT.value,
            ~has_open_erasure(DatasetVersion.id),
        )
        .order_by(DatasetVersion.id)
        .with_for_update(of=DatasetVersion)
    )
    return list(session.execute(stmt))


def erase_datasets(
    session: Session,
    versions: list[tuple[DatasetVersion, Dataset]],
    *,
    by: str,
    why: str,
    now: float,
    source: str | None = None,
) -> list[audit.NewEvent]:
    """An erasure (trigger closure) of each version; the control loop carries them out."""
    events = []
    for version, dataset in versions:
        erasure = record_erasure(
            session, version, trigger=ErasureTrigger.CLOSURE, reason=why, by=by, now=now
        )
        events.append(request_event(erasure, version, dataset, by=by, stopped=[], source=source))
    return events


# ---- finishing, under the control loop -------------------------------------------------------


def closing_projects(db: Database) -> list[int]:
    with db.read() as session:
        stmt = select(ProjectClosure.project_id).where(
            ProjectClosure.state == ClosureState.CLOSING.value
        )
        return list(session.scalars(stmt.order_by(ProjectClosure.project_id)))


def advance_closures(
    db: Database, now: float, *, jobs_dir: Path, remove: Remover = remove_tree
) -> None:
    for project_id in closing_projects(db):
        try:
            advance_closure(db, project_id, now, jobs_dir=jobs_dir, remove=remove)
        except (OSError, OutsideRoot):
            log.exception("closure of project %d: a job directory stays; trying again", project_id)


def advance_closure(
    db: Database, project_id: int, now: float, *, jobs_dir: Path, remove: Remover = remove_tree
) -> ClosureState:
    if not settle_closure(db, project_id, now):
        return closure_state(db, project_id)
    remove_job_dirs(db, project_id, jobs_dir=jobs_dir, remove=remove)
    return finish_closure(db, project_id, now, jobs_dir=jobs_dir)


def settle_closure(db: Database, project_id: int, now: float) -> bool:
    """Step 1: stop what slipped in; True once nothing of the project runs and every erasure
    of its datasets is done."""
    with db.session() as session:
        closure = _locked(session, project_id)
        if closure.state != ClosureState.CLOSING.value:
            return False
        project = session.get(Project, project_id)
        assert project is not None
        why = f"project {project.name} is closed: {closure_reason(closure)}"
        late = present_versions_of(session, project_id)
        stopped = stop_jobs(
            session, active_jobs_of(session, project_id), why=why, now=now, actor=ACTOR
        )
        cancelled = cancel_waiting_jobs(session, project_id, why=why, now=now, actor=ACTOR)
        events = [*stopped.events, *cancelled.events]
        events += revoke_grants(session, project_id, by=ACTOR, why=why, now=now)
        events += erase_datasets(session, late, by=ACTOR, why=why, now=now)
        audit.append(session, events, at=now)
        return not late and not _busy(session, project_id)


def _busy(session: Session, project_id: int) -> bool:
    """A job of the project still active, or an erasure of its datasets not yet done."""
    if active_jobs_of(session, project_id):
        return True
    open_ = (
        select(Erasure.id)
        .join(DatasetVersion, DatasetVersion.id == Erasure.version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.owner_project_id == project_id, Erasure.state.in_(OPEN_STATES))
        .limit(1)
    )
    return session.scalar(open_) is not None


def closure_state(db: Database, project_id: int) -> ClosureState:
    with db.read() as session:
        return ClosureState(session.get_one(ProjectClosure, project_id).state)


def remove_job_dirs(
    db: Database, project_id: int, *, jobs_dir: Path, remove: Remover = remove_tree
) -> None:
    """Step 2: remove the directory of every job of the project (logs, outputs, attempts)."""
    for job_id in _job_ids(db, project_id):
        remove(jobs_dir / str(job_id), jobs_dir)


def _job_ids(db: Database, project_id: int) -> list[int]:
    with db.read() as session:
        return list(session.scalars(select(Job.id).where(Job.project_id == project_id)))


def finish_closure(db: Database, project_id: int, now: float, *, jobs_dir: Path) -> ClosureState:
    """Step 3: closing → closed, with the report and certificate."""
    with db.session() as session:
        closure = _locked(session, project_id)
        state = ClosureState(closure.state)
        if state is not ClosureState.CLOSING:
            return state
        check_closure_transition(state, ClosureState.CLOSED)
        report = closure_report(session, closure, jobs_dir=jobs_dir, now=now)
        left = [j["directory"] for j in report["jobs"] if os.path.lexists(j["directory"])]
        if left:
            raise OSError(f"job directories still there: {', '.join(left)}")
        digest = digest_of(report)
        closure.report = report
        closure.certificate_pdf = certificates.closure_certificate(report, digest)
        closure.state = ClosureState.CLOSED.value
        closure.completed_at = now
        audit.record(
            session,
            actor=ACTOR,
            action="project.close",
            object=f"project:{report['project']['name']}",
            at=now,
            project_id=project_id,
            detail={"state": ClosureState.CLOSED.value, "report_sha256": digest},
        )
        return ClosureState.CLOSED


def _locked(session: Session, project_id: int) -> ProjectClosure:
    stmt = select(ProjectClosure).where(ProjectClosure.project_id == project_id).with_for_update()
    return session.scalars(stmt).one()


# ---- the report ------------------------------------------------------------------------------


def closure_report(
    session: Session, closure: ProjectClosure, *, jobs_dir: Path, now: float
) -> dict[str, Any]:
    project = session.get(Project, closure.project_id)
    assert project is not None
    organisation = session.get(Organisation, project.organisation_id)
    return {
        "kind": "closure",
        "facility": certificates.FACILITY,
        "project": {
            "name": project.name,
            "organisation": organisation.name if organisation else None,
            "created_at": iso(project.created_at),
        },
        "reason": closure_reason(closure),
        "requested_by": closure.requested_by,
        "requested_at": iso(closure.requested_at),
        "completed_at": iso(now),
        "members": _members(session, project.id),
        "jobs": _jobs(session, project.id, jobs_dir),
        "grants": _grants(session, project.id),
        "erasures": _erasures(session, project.id),
    }


def _members(session: Session, project_id: int) -> list[dict[str, Any]]:
    stmt = (
        select(User.name, Member.role)
        .join(Member, Member.user_id == User.id)
        .where(Member.project_id == project_id)
        .order_by(User.name)
    )
    return [{"user": name, "role": role} for name, role in session.execute(stmt)]


def _jobs(session: Session, project_id: int, jobs_dir: Path) -> list[dict[str, Any]]:
    stmt = (
        select(Job, User.name)
        .join(User, User.id == Job.user_id)
        .where(Job.project_id == project_id)
        .order_by(Job.id)
    )
    return [
        {
            "id": job.id,
            "name": job.name,
            "user": user,
            "state": job.state,
            "submitted_at": iso(job.submitted_at),
            "ended_at": iso(job.ended_at),
            "directory": str(jobs_dir / str(job.id)),
        }
        for job, user in session.execute(stmt)
    ]


def _grants(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Every grant the project held or gave, with its revocation."""
    owned = select(Dataset.id).where(Dataset.owner_project_id == project_id)
    stmt = (
        select(DatasetGrant, Dataset.name, Project.name)
        .join(Dataset, Dataset.id == DatasetGrant.dataset_id)
        .join(Project, Project.id == DatasetGrant.project_id)
        .where(or_(DatasetGrant.project_id == project_id, DatasetGrant.dataset_id.in_(owned)))
        .order_by(DatasetGrant.id)
    )
    return [
        {
            "id": grant.id,
            "dataset": dataset,
            "project": holder,
            "direction": "held" if grant.project_id == project_id else "given",
            "purpose": grant.purpose,
            "granted_at": iso(grant.granted_at),
            "revoked_at": iso(grant.revoked_at),
            "revoked_by": grant.revoked_by,
        }
        for grant, dataset, holder in session.execute(stmt)
    ]


def _erasures(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Every erasure of the project's datasets, whatever its trigger, with its report's hash."""
    stmt = (
        select(Erasure, DatasetVersion, Dataset.name)
        .join(DatasetVersion, DatasetVersion.id == Erasure.version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(
            Dataset.owner_project_id == project_id,
            Erasure.state == ErasureState.DONE.value,
        )
        .order_by(Erasure.id)
    )
    return [
        {
            "id": erasure.id,
            "dataset": dataset,
            "version": version.version,
            "sha256": version.sha256,
            "trigger": erasure.trigger,
            "completed_at": iso(erasure.completed_at),
            "report_sha256": digest_of(erasure.report or {}),
        }
        for erasure, version, dataset in session.execute(stmt)
    ]
