"""Datasets at the door: what a job declares, whether it may read it now, where it may run.

At submission each declared dataset (`name` or `name@version`) is resolved to a present version;
the job records those versions (job_datasets), their paths in its environment
(`AIFACTORY_DATASET_<NAME>`) and the countries their residencies allow (jobs.countries), all
settled then because versions never change. Whether the project may use each dataset is decided
every time the job could start, by the control loop: a job whose project holds no valid grant
(or whose version is being erased) is HELD with the reason and goes back to wait when that is
mended. The owner project may always use its own datasets.

A job may name only the datasets its project could see: facility datasets, the project's own,
and those granted to it (even if that grant has since ended: the job is then HELD, saying so).
Any other name is answered exactly as one that does not exist, whoever submits: another
project's dataset, its state and its path are not the submitter's to learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import (
    DATA_HOLD,
    DatasetRead,
    Residency,
    VersionState,
    countries_allowed,
    env_name,
    read_refusal,
)
from aifactory.domain.jobs import JobState
from aifactory.errors import InvalidInput
from aifactory.governance import audit
from aifactory.governance.removal import has_open_erasure
from aifactory.store.models import (
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Job,
    JobDataset,
    Project,
    User,
)

HOLD_PREFIX = DATA_HOLD
MAX_DATASETS = 16


@dataclass(frozen=True, slots=True)
class Declared:
    """A declared dataset, resolved to the version the job will read."""

    dataset_id: int
    version_id: int
    name: str
    version: int
    path: str
    residency: Residency

    @property
    def env_name(self) -> str:
        return env_name(self.name)


def resolve(session: Session, refs: Sequence[str], *, project_id: int) -> list[Declared]:
    """Each `name` (its newest present version) or `name@N`, among the datasets a job of
    `project_id` may name; 422 naming `datasets` otherwise."""
    if len(refs) > MAX_DATASETS:
        raise InvalidInput(f"at most {MAX_DATASETS} datasets per job", field="datasets")
    declared: list[Declared] = []
    for ref in refs:
        name, _, number = ref.partition("@")
        found = _present_version(session, name, int(number) if number else None, project_id)
        if found is None:
            which = f"{name} version {number}" if number else name
            raise InvalidInput(f"no dataset {which} is present", field="datasets")
        if any(d.dataset_id == found.dataset_id for d in declared):
            raise InvalidInput(f"dataset {name} is declared twice", field="datasets")
        declared.append(found)
    return declared


def _present_version(
    session: Session, name: str, number: int | None, project_id: int
) -> Declared | None:
    stmt = (
        select(Dataset.id, Dataset.name, DatasetVersion)
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
        .where(
            Dataset.name == name,
            DatasetVersion.state == VersionState.PRESENT.value,
            _nameable_by(project_id),
        )
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    )
    if number is not None:
        stmt = stmt.where(DatasetVersion.version == number)
    row = session.execute(stmt).first()
    if row is None:
        return None
    dataset_id, dataset_name, version = row
    return Declared(
        dataset_id,
        version.id,
        dataset_name,
        version.version,
        version.path,
        Residency(version.residency),
    )


def _nameable_by(project_id: int) -> ColumnElement[bool]:
    """Datasets a job of the project may name: the facility's, its own, and those granted to
    it at any time (revoked and expired grants included)."""
    granted = select(DatasetGrant.dataset_id).where(DatasetGrant.project_id == project_id)
    return or_(
        Dataset.owner_project_id.is_(None),
        Dataset.owner_project_id == project_id,
        Dataset.id.in_(granted),
    )


def job_environment(declared: Iterable[Declared]) -> dict[str, str]:
    return {d.env_name: d.path for d in declared}


def job_countries(declared: Iterable[Declared]) -> list[str] | None:
    allowed = countries_allowed(d.residency for d in declared)
    return None if allowed is None else sorted(allowed)


def record(session: Session, job_id: int, declared: Iterable[Declared]) -> None:
    session.add_all(
        JobDataset(
            job_id=job_id, version_id=d.version_id, dataset_id=d.dataset_id, env_name=d.env_name
        )
        for d in declared
    )


# ---- at admission -------------------------------------------------------------------------


def problems(session: Session, now: float, job_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Why each waiting job that declared datasets may not read them now (held jobs: those held
    for data). Jobs absent from the answer may go ahead. `job_ids`: only these jobs."""
    found: dict[int, str] = {}
    for job_id, uses in data_uses_by_job(session, now, job_ids).items():
        for use in uses:
            refusal = read_refusal(use)
            if refusal is not None:
                found[job_id] = HOLD_PREFIX + refusal
                break
    return found


def waiting_with_data(session: Session) -> list[int]:
    """Jobs the data check applies to: pending ones that declared datasets, and held ones."""
    return list(
        session.scalars(
            select(Job.id).where(
                Job.uses_datasets.is_(True),
                Job.state.in_([JobState.PENDING.value, JobState.HELD.value]),
            )
        )
    )


def data_uses_by_job(
    session: Session, now: float, job_ids: Iterable[int] | None = None
) -> dict[int, tuple[DatasetRead, ...]]:
    """The facts the data rule (domain.datasets.read_refusal) judges, for each waiting job that
    declared datasets (`job_ids`: only these), in dataset name order."""
    ids = list(job_ids) if job_ids is not None else waiting_with_data(session)
    if not ids:
        return {}
    stmt = (
        select(
            JobDataset.job_id,
            Job.project_id,
            Project.name,
            Dataset.id,
            Dataset.name,
            Dataset.owner_project_id,
            DatasetVersion.version,
            DatasetVersion.state,
            has_open_erasure(DatasetVersion.id),
        )
        .join(Job, Job.id == JobDataset.job_id)
        .join(Project, Project.id == Job.project_id)
        .join(DatasetVersion, DatasetVersion.id == JobDataset.version_id)
        .join(Dataset, Dataset.id == JobDataset.dataset_id)
        .where(JobDataset.job_id.in_(ids))
        .order_by(JobDataset.job_id, Dataset.name)
    )
    rows = list(session.execute(stmt))
    granted = _granted(session, {r[3] for r in rows}, now)
    found: dict[int, tuple[DatasetRead, ...]] = {}
    for job_id, project_id, project, dataset_id, name, owner, version, state, due in rows:
        readable = owner == project_id or (dataset_id, project_id) in granted
        use = DatasetRead(project, name, version, VersionState(state), bool(due), readable)
        found[job_id] = (*found.get(job_id, ()), use)
    return found


def _granted(session: Session, dataset_ids: set[int], now: float) -> set[tuple[int, int]]:
    """(dataset, project) pairs with a grant valid now: not revoked, not yet ended."""
    if not dataset_ids:
        return set()
    stmt = select(DatasetGrant.dataset_id, DatasetGrant.project_id).where(
        DatasetGrant.dataset_id.in_(sorted(dataset_ids)),
        DatasetGrant.revoked_at.is_(None),
        DatasetGrant.until > now,
    )
    return {(d, p) for d, p in session.execute(stmt)}


def record_access(session: Session, job: Job, *, now: float) -> None:
    """One `dataset.access` audit event per dataset an admitted attempt will read, naming the
    job, the version and the nodes (so the log shows where the data was processed)."""
    user = session.scalar(select(User.name).where(User.id == job.user_id)) or str(job.user_id)
    rows = session.execute(
        select(Dataset.name, DatasetVersion.version, DatasetVersion.sha256)
        .join(JobDataset, JobDataset.dataset_id == Dataset.id)
        .join(DatasetVersion, DatasetVersion.id == JobDataset.version_id)
        .where(JobDataset.job_id == job.id)
        .order_by(Dataset.name)
    )
    nodes = sorted(job.placement or {})
    audit.append(
        session,
        [
            audit.NewEvent(
                actor=user,
                action="dataset.access",
                object=f"dataset:{name}",
                project_id=job.project_id,
                detail={
                    "job": job.id,
                    "attempt": job.attempts,
                    "version": version,
                    "sha256": sha256,
                    "nodes": nodes,
                },
            )
            for name, version, sha256 in rows
        ],
        at=now,
    )


# ---- what a job's page shows --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataUse:
    """A job's declared dataset and where its project's right to read it stands now: running
    jobs show a revoked grant here (they keep running; new attempts are held)."""

    dataset: str
    version: int
    env_name: str
    path: str
    version_state: str
    access: str  # owner | granted | revoked | expired | none
    note: str


def data_uses(session: Session, job_id: int, project_id: int, now: float) -> list[DataUse]:
    rows = session.execute(
        select(Dataset, DatasetVersion, JobDataset.env_name)
        .join(JobDataset, JobDataset.dataset_id == Dataset.id)
        .join(DatasetVersion, DatasetVersion.id == JobDataset.version_id)
        .where(JobDataset.job_id == job_id)
        .order_by(Dataset.name)
    ).all()
    return [
        DataUse(
            dataset.name,
            version.version,
            env,
            version.path,
            version.state,
            *_access(session, dataset, project_id, now),
        )
        for dataset, version, env in rows
    ]


def _access(session: Session, dataset: Dataset, project_id: int, now: float) -> tuple[str, str]:
    if dataset.owner_project_id == project_id:
        return "owner", "the project owns this dataset"
    latest = session.scalars(
        select(DatasetGrant)
        .where(DatasetGrant.dataset_id == dataset.id, DatasetGrant.project_id == project_id)
        .order_by(DatasetGrant.granted_at.desc(), DatasetGrant.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return "none", "no grant: the job is held until the dataset's owner grants use"
    if latest.revoked_at is not None:
        why = f": {latest.revoke_reason}" if latest.revoke_reason else ""
        return "revoked", f"grant revoked by {latest.revoked_by}{why}; new attempts are held"
    if latest.until <= now:
        return "expired", "the grant has ended; new attempts are held"
    return "granted", f"granted for {latest.purpose!r}"
