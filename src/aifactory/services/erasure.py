"""Erasure requests (GDPR Art. 17), and reading erasures, their reports and certificates.

Who (domain.permissions): an erasure of a project's dataset is requested by the owner
project's owners or an admin, of a facility dataset by an admin; erasures are read by admins
and auditors (all) and by owners of the dataset's owner project (theirs). Whoever does not
see the owner project is told the dataset or erasure does not exist.

The rule for running jobs: a request is refused (409, naming them) while an active job
(ADMITTED, RUNNING) uses the version, unless it asks to `stop_running_jobs`; then those jobs
are cancelled now and the erasure runs once none is active any more. The control loop carries
erasures out (governance.erasure); a request only records one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import ErasureTrigger, VersionState
from aifactory.domain.erasure import ErasureState, refuses_running_jobs, running_jobs_message
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.governance.removal import (
    OPEN_STATES,
    active_jobs_using,
    record_erasure,
    request_event,
    stop_jobs,
)
from aifactory.services.principal import Principal
from aifactory.store.models import Dataset, DatasetVersion, Erasure, Project

MAX_REASON = 20_000
MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ErasureView:
    erasure: Erasure
    dataset: str
    version: int
    owner_project: str | None
    active_jobs: tuple[int, ...] = ()  # active jobs still using the version (while recorded)


def request_erasure(
    session: Session,
    principal: Principal,
    *,
    dataset: str,
    version: int,
    reason: str,
    stop_running_jobs: bool,
    now: float,
) -> ErasureView:
    found = _dataset(session, dataset)
    owner = found.owner_project_id
    seen = principal.may(Action.DATASET_READ, owner)  # who reads it is told why not (403)
    principal.authorize(Action.ERASURE_REQUEST, owner, what="dataset", seen=seen)
    why = _reason(reason)
    target = _version(session, found, version)
    _check_erasable(session, target, found)
    what = f"{found.name} version {target.version}"
    active = active_jobs_using(session, [target.id])
    trigger = ErasureTrigger.REQUEST
    if active and refuses_running_jobs(trigger, stop_running_jobs=stop_running_jobs):
        raise Conflict(
            running_jobs_message(what, [j.id for j in active]), field="stop_running_jobs"
        )
    stopped = stop_jobs(
        session,
        active,
        why=f"{what} is being erased: {why}",
        now=now,
        actor=principal.name,
        source=principal.source,
    )
    erasure = record_erasure(
        session, target, trigger=trigger, reason=why, by=principal.name, now=now
    )
    event = request_event(
        erasure, target, found, by=principal.name, stopped=stopped.job_ids, source=principal.source
    )
    audit.append(session, [*stopped.events, event], at=now)
    return ErasureView(erasure, found.name, target.version, _owner_name(session, found))


def _dataset(session: Session, name: str) -> Dataset:
    """By name; who may act on it is `authorize`'s to say (404 for who does not see its owner)."""
    stmt = select(Dataset).where(Dataset.name == name)
    found = None if "\x00" in name else session.scalars(stmt).first()
    if found is None:
        raise NotFound("dataset not found", field="dataset")  # as authorize says it
    return found


def _version(session: Session, dataset: Dataset, number: int) -> DatasetVersion:
    stmt = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == number
    )
    found = session.scalars(stmt.with_for_update()).first() if 0 < number <= MAX_ID else None
    if found is None:
        raise NotFound(f"dataset {dataset.name} has no version {number}", field="version")
    return found


def _check_erasable(session: Session, version: DatasetVersion, dataset: Dataset) -> None:
    what = f"{dataset.name} version {version.version}"
    if version.state != VersionState.PRESENT.value:
        raise Conflict(f"{what} is {version.state} already", field="version")
    stmt = select(Erasure).where(Erasure.version_id == version.id, Erasure.state.in_(OPEN_STATES))
    pending = session.scalars(stmt).first()
    if pending is not None:
        raise Conflict(
            f"{what} is to be erased already (erasure {pending.id}, {pending.trigger})",
            field="version",
        )


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidInput("say why the data is to be erased", field="reason")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"at most {MAX_REASON} characters", field="reason")
    return text


def _owner_name(session: Session, dataset: Dataset) -> str | None:
    if dataset.owner_project_id is None:
        return None
    project = session.get(Project, dataset.owner_project_id)
    return project.name if project else None


# ---- reading -----------------------------------------------------------------------------------


def list_erasures(
    session: Session,
    principal: Principal,
    *,
    state: ErasureState | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[ErasureView]:
    """Newest first: every erasure for admins and auditors, else those of datasets owned by
    projects where the principal may read erasures (owners)."""
    stmt = (
        select(Erasure, DatasetVersion.version, Dataset.name, Project.name)
        .join(DatasetVersion, DatasetVersion.id == Erasure.version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .outerjoin(Project, Project.id == Dataset.owner_project_id)
        .order_by(Erasure.id.desc())
        .limit(limit)
    )
    mine = principal.projects_for(Action.ERASURE_READ)
    if mine is not None:
        stmt = stmt.where(Dataset.owner_project_id.in_(mine))
    if state is not None:
        stmt = stmt.where(Erasure.state == state.value)
    if before_id is not None:
        stmt = stmt.where(Erasure.id < before_id)
    return [
        ErasureView(erasure, dataset, version, owner)
        for erasure, version, dataset, owner in session.execute(stmt)
    ]


def get_erasure(session: Session, principal: Principal, erasure_id: int) -> ErasureView:
    found = session.get(Erasure, erasure_id) if 0 < erasure_id <= MAX_ID else None
    if found is None:
        raise NotFound("erasure not found", field="erasure_id")  # as authorize says it
    version = session.get(DatasetVersion, found.version_id)
    assert version is not None
    dataset = session.get(Dataset, version.dataset_id)
    assert dataset is not None
    principal.authorize(Action.ERASURE_READ, dataset.owner_project_id, what="erasure")
    active: tuple[int, ...] = ()
    if found.state == ErasureState.RECORDED.value:
        active = tuple(j.id for j in active_jobs_using(session, [version.id]))
    return ErasureView(found, dataset.name, version.version, _owner_name(session, dataset), active)


def erasure_certificate(session: Session, principal: Principal, erasure_id: int) -> bytes:
    view = get_erasure(session, principal, erasure_id)
    pdf = view.erasure.certificate_pdf
    if pdf is None:
        raise Conflict(
            f"erasure {erasure_id} is {view.erasure.state}: its certificate is issued when it "
            "is done",
            field="erasure_id",
        )
    return pdf
