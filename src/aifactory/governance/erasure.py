"""Erasure of dataset versions (GDPR Art. 17, retention expiry, project closure).

The control loop calls `advance` every tick while it holds its lease. Each erasure goes
recorded → erasing → done in three steps, each safe to run again after a crash:
1. `start_erasure` (one transaction): while an active job uses the version, ask it to stop and
   wait; once none does, mark the version *and* the erasure `erasing`. From then on the version
   is never readable or usable, so no crash can leave half-erased data looking present.
2. `remove_files` (no transaction): remove the version's path, which must lie inside the data
   root (checked again here). Already gone is fine.
3. `finish_erasure` (one transaction): build the report (what was removed, every job that used
   the version and what it left, the grants there were), render the certificate, store both,
   mark the version erased and the erasure done, and append `dataset.erase` to the audit log.
An erasure found `erasing` is simply continued from step 2.

Retention: a present version whose `retention_until` has passed gets an erasure (trigger
retention) on the next tick; like a closure, it always stops the jobs that use the version.
A request is refused while active jobs use the version unless its requester asked for them to
be stopped (services.erasure). Jobs that start using a version after its erasure was recorded
are stopped too: the data is going, whoever admitted them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from aifactory.domain import notices
from aifactory.domain.datasets import ErasureTrigger, VersionState
from aifactory.domain.erasure import ClosureState, ErasureState, check_transition
from aifactory.domain.erasure import report_digest as digest_of
from aifactory.governance import audit, certificates, closure
from aifactory.governance.removal import (
    OPEN_STATES,
    OutsideRoot,
    Remover,
    active_jobs_using,
    has_open_erasure,
    iso,
    record_erasure,
    remove_tree,
    request_event,
    stop_jobs,
    tree_size,
)
from aifactory.store import outbox
from aifactory.store.db import Database
from aifactory.store.models import (
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Erasure,
    Job,
    JobDataset,
    Project,
    ProjectClosure,
    User,
)

log = logging.getLogger("aifactory.erasure")
ACTOR = "control"  # who acts for retention expiry and finishes every erasure


def advance(
    db: Database, now: float, *, data_root: Path, jobs_dir: Path, remove: Remover = remove_tree
) -> None:
    """Start the erasures that are due and finish the ones under way (the control loop calls
    this every tick; it must be cheap when there is nothing to do). `remove` is a seam."""
    with db.read() as session:
        due = what_is_due(session, now)
    if due.expired:
        sweep_retention(db, now)
    if due.expired or due.erasures:
        for erasure_id in open_erasures(db):
            _advance_one(db, erasure_id, now, data_root=data_root, jobs_dir=jobs_dir, remove=remove)
    if due.closures:
        closure.advance_closures(db, now, jobs_dir=jobs_dir, remove=remove)


def _advance_one(
    db: Database, erasure_id: int, now: float, *, data_root: Path, jobs_dir: Path, remove: Remover
) -> None:
    try:
        advance_erasure(db, erasure_id, now, data_root=data_root, jobs_dir=jobs_dir, remove=remove)
    except (OSError, OutsideRoot):
        log.exception("erasure %d: its files could not be removed; trying again", erasure_id)


@dataclass(frozen=True, slots=True)
class Due:
    expired: bool  # a present version is past its retention
    erasures: bool  # an erasure is recorded or erasing
    closures: bool  # a project is closing


def what_is_due(session: Session, now: float) -> Due:
    """One statement over indexed columns (the closures table is small and unindexed)."""
    expired = select(DatasetVersion.id).where(
        DatasetVersion.state == VersionState.PRESENT.value, DatasetVersion.retention_until <= now
    )
    open_ = select(Erasure.id).where(Erasure.state.in_(OPEN_STATES))
    closing = select(ProjectClosure.project_id).where(
        ProjectClosure.state == ClosureState.CLOSING.value
    )
    row = session.execute(select(exists(expired), exists(open_), exists(closing))).one()
    return Due(*(bool(flag) for flag in row))


def open_erasures(db: Database) -> list[int]:
    with db.read() as session:
        stmt = select(Erasure.id).where(Erasure.state.in_(OPEN_STATES)).order_by(Erasure.id)
        return list(session.scalars(stmt))


# ---- retention -------------------------------------------------------------------------------


def sweep_retention(db: Database, now: float) -> list[int]:
    """Record an erasure (trigger retention) for every present version past its retention,
    and stop the jobs using it; returns the new erasures' ids."""
    with db.session() as session:
        stmt = (
            select(DatasetVersion, Dataset)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(
                DatasetVersion.state == VersionState.PRESENT.value,
                DatasetVersion.retention_until <= now,
                ~has_open_erasure(DatasetVersion.id),
            )
            .order_by(DatasetVersion.id)
        )
        expired = list(session.execute(stmt))
        made: list[Erasure] = []
        events: list[audit.NewEvent] = []
        for version, dataset in expired:
            reason = f"retention period ended {iso(version.retention_until)}"
            erasure = record_erasure(
                session, version, trigger=ErasureTrigger.RETENTION, reason=reason, by=ACTOR, now=now
            )
            stopped = stop_jobs(
                session,
                active_jobs_using(session, [version.id]),
                why=f"{dataset.name} v{version.version} is erased: {reason}",
                now=now,
                actor=ACTOR,
            )
            made.append(erasure)
            events += stopped.events
            events.append(
                request_event(erasure, version, dataset, by=ACTOR, stopped=stopped.job_ids)
            )
        audit.append(session, events, at=now)
        return [e.id for e in made]


# ---- the three steps -------------------------------------------------------------------------


def advance_erasure(
    db: Database,
    erasure_id: int,
    now: float,
    *,
    data_root: Path,
    jobs_dir: Path,
    remove: Remover = remove_tree,
) -> ErasureState:
    """Take one erasure as far as it can go now; returns the state it is left in."""
    state = start_erasure(db, erasure_id, now)
    if state is ErasureState.ERASING:
        remove_files(db, erasure_id, data_root=data_root, remove=remove)
        state = finish_erasure(db, erasure_id, now, jobs_dir=jobs_dir)
    return state


def start_erasure(db: Database, erasure_id: int, now: float) -> ErasureState:
    """Step 1: recorded → erasing once no active job uses the version (those that do are asked
    to stop). Returns the erasure's state after this step."""
    with db.session() as session:
        erasure, version, dataset = _locked(session, erasure_id)
        state = ErasureState(erasure.state)
        if state is not ErasureState.RECORDED:
            return state
        active = active_jobs_using(session, [version.id])
        if active:
            why = f"{dataset.name} v{version.version} is being erased ({erasure.trigger})"
            stopped = stop_jobs(session, active, why=why, now=now, actor=ACTOR)
            audit.append(session, stopped.events, at=now)
            return state
        if version.state == VersionState.ERASING.value:
            return state  # a second erasure of it (a race): it follows once the first is done
        check_transition(state, ErasureState.ERASING)
        erasure.state = ErasureState.ERASING.value
        if version.state == VersionState.PRESENT.value:
            version.state = VersionState.ERASING.value
        return ErasureState.ERASING


def remove_files(
    db: Database, erasure_id: int, *, data_root: Path, remove: Remover = remove_tree
) -> None:
    """Step 2: remove the files of an erasing version (outside any transaction)."""
    with db.read() as session:
        erasure = session.get(Erasure, erasure_id)
        if erasure is None or erasure.state != ErasureState.ERASING.value:
            return
        version = session.get(DatasetVersion, erasure.version_id)
        assert version is not None
        path = Path(version.path)
    remove(path, data_root)


def finish_erasure(db: Database, erasure_id: int, now: float, *, jobs_dir: Path) -> ErasureState:
    """Step 3: erasing → done, with the report and certificate, once the files are gone."""
    with db.session() as session:
        erasure, version, dataset = _locked(session, erasure_id)
        state = ErasureState(erasure.state)
        if state is not ErasureState.ERASING:
            return state
        if os.path.lexists(version.path):
            raise OSError(f"{version.path} is still there: erasure {erasure_id} is not done")
        check_transition(state, ErasureState.DONE)
        report = erasure_report(session, erasure, version, dataset, jobs_dir=jobs_dir, now=now)
        digest = digest_of(report)
        erasure.report = report
        erasure.certificate_pdf = certificates.erasure_certificate(report, digest)
        erasure.state = ErasureState.DONE.value
        erasure.completed_at = now
        version.state = VersionState.ERASED.value
        version.erased_at = version.erased_at or now
        _tell(session, erasure, dataset, version.version, now=now)
        audit.record(
            session,
            actor=ACTOR,
            action="dataset.erase",
            object=f"dataset:{dataset.name}",
            at=now,
            project_id=dataset.owner_project_id,
            detail={
                "erasure": erasure.id,
                "version": version.version,
                "trigger": erasure.trigger,
                "sha256": version.sha256,
                "report_sha256": digest,
            },
        )
        return ErasureState.DONE


def _tell(
    session: Session, erasure: Erasure, dataset: Dataset, version: int, *, now: float
) -> None:
    """Who asked for it and the dataset's project owners hear it is done (store.outbox)."""
    notice = notices.erasure_completed(erasure.id, dataset.name, version, erasure.trigger)
    people = outbox.user_named(session, erasure.requested_by)
    outbox.notify(
        session, notice, people + outbox.owners_of(session, dataset.owner_project_id), now=now
    )


def _locked(session: Session, erasure_id: int) -> tuple[Erasure, DatasetVersion, Dataset]:
    erasure = session.scalars(
        select(Erasure).where(Erasure.id == erasure_id).with_for_update()
    ).one()
    version = session.scalars(
        select(DatasetVersion).where(DatasetVersion.id == erasure.version_id).with_for_update()
    ).one()
    dataset = session.get(Dataset, version.dataset_id)
    assert dataset is not None
    return erasure, version, dataset


# ---- the report ------------------------------------------------------------------------------

ARTEFACTS_NOTE = (
    "Derived artefacts (the directories of jobs that read the data, and their working "
    "directories) are listed, not removed: they belong to the projects that ran the jobs, "
    "which are told by this report; a project's closure removes its job directories."
)


def erasure_report(
    session: Session,
    erasure: Erasure,
    version: DatasetVersion,
    dataset: Dataset,
    *,
    jobs_dir: Path,
    now: float,
) -> dict[str, Any]:
    """What the certificate vouches for, as plain JSON values (times ISO 8601, UTC)."""
    owner = session.get(Project, dataset.owner_project_id) if dataset.owner_project_id else None
    return {
        "kind": "erasure",
        "facility": certificates.FACILITY,
        "erasure": {
            "id": erasure.id,
            "trigger": erasure.trigger,
            "reason": erasure.reason,
            "requested_by": erasure.requested_by,
            "requested_at": iso(erasure.requested_at),
            "completed_at": iso(now),
        },
        "dataset": {
            "name": dataset.name,
            "owner_project": owner.name if owner else None,
            "controller": dataset.controller,
            "processor": dataset.processor,
        },
        "version": _version_facts(version),
        "removed": [
            {"path": version.path, "files": version.files, "size_bytes": version.size_bytes}
        ],
        "jobs": users_of(session, version.id, jobs_dir=jobs_dir),
        "grants": grants_of(session, dataset.id),
        "artefacts_note": ARTEFACTS_NOTE,
    }


def _version_facts(version: DatasetVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "sha256": version.sha256,
        "path": version.path,
        "files": version.files,
        "size_bytes": version.size_bytes,
        "classification": version.classification,
        "legal_basis": version.legal_basis,
        "special_condition": version.special_condition,
        "purposes": list(version.purposes),
        "residency": version.residency,
        "retention_until": iso(version.retention_until),
        "licence": version.licence,
        "registered_by": version.registered_by,
        "registered_at": iso(version.registered_at),
    }


def users_of(session: Session, version_id: int, *, jobs_dir: Path) -> list[dict[str, Any]]:
    """Every job that declared the version, with its project, user, times and artefacts."""
    stmt = (
        select(Job, JobDataset.env_name, Project.name, User.name)
        .join(JobDataset, JobDataset.job_id == Job.id)
        .join(Project, Project.id == Job.project_id)
        .join(User, User.id == Job.user_id)
        .where(JobDataset.version_id == version_id)
        .order_by(Job.id)
    )
    return [
        {
            "id": job.id,
            "name": job.name,
            "project": project,
            "user": user,
            "state": job.state,
            "submitted_at": iso(job.submitted_at),
            "started_at": iso(job.started_at),
            "ended_at": iso(job.ended_at),
            "env_name": env_name,
            "artefacts": artefacts_of(job, jobs_dir),
        }
        for job, env_name, project, user in session.execute(stmt)
    ]


def artefacts_of(job: Job, jobs_dir: Path) -> list[dict[str, Any]]:
    """Where a job may have left what it derived: its directory, its working directory."""
    home = jobs_dir / str(job.id)
    files, size = tree_size(home)
    found: list[dict[str, Any]] = [
        {
            "kind": "job_directory",
            "path": str(home),
            "exists": home.is_dir(),
            "files": files,
            "size_bytes": size,
        }
    ]
    if job.working_dir:
        workdir = Path(job.working_dir)
        found.append(
            {"kind": "working_directory", "path": str(workdir), "exists": workdir.is_dir()}
        )
    return found


def grants_of(session: Session, dataset_id: int) -> list[dict[str, Any]]:
    stmt = (
        select(DatasetGrant, Project.name)
        .join(Project, Project.id == DatasetGrant.project_id)
        .where(DatasetGrant.dataset_id == dataset_id)
        .order_by(DatasetGrant.id)
    )
    return [
        {
            "id": grant.id,
            "project": project,
            "purpose": grant.purpose,
            "until": iso(grant.until),
            "granted_by": grant.granted_by,
            "granted_at": iso(grant.granted_at),
            "revoked_at": iso(grant.revoked_at),
            "revoked_by": grant.revoked_by,
            "revoke_reason": grant.revoke_reason,
        }
        for grant, project in session.execute(stmt)
    ]
