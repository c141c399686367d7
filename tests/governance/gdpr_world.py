"""Datasets with real files, jobs that used them and their job directories, for the GDPR tests.

Rows are inserted directly (the registry and admission have tests of their own): a dataset
version is a read-only directory under a data root, with two files; a job is a row in the
state asked for, linked to the versions it read (job_datasets), placed on a node, with a job
directory holding a log. Two sites: `NL` (node-1, as tests.conftest seeds it) and `fra` in
Germany (node `de-1`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from aifactory.domain.jobs import JobState
from aifactory.services.auth import principal_of
from aifactory.services.principal import Principal
from aifactory.store.db import Database
from aifactory.store.jobs import NewJob, insert_jobs
from aifactory.store.models import (
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Job,
    JobDataset,
    Node,
    Project,
    Site,
    User,
)

T0 = 1_700_000_000.0
DAY = 86400.0
YEAR = 365 * DAY


@dataclass(frozen=True)
class Data:
    dataset_id: int
    version_ids: list[int]
    paths: list[Path]
    sha256: list[str]


def who(db: Database, name: str) -> Principal:
    with db.read() as s:
        user = s.scalars(select(User).where(User.name == name)).one()
        return principal_of(s, user)


def project_id(db: Database, name: str) -> int:
    with db.read() as s:
        return s.scalars(select(Project.id).where(Project.name == name)).one()


def add_sites(db: Database, *, now: float = T0) -> None:
    """Site NL (NL) for node-1 and site fra (DE) with node de-1."""
    with db.session() as s:
        for name, country in (("NL", "NL"), ("fra", "DE")):
            if s.get(Site, name) is None:
                s.add(Site(name=name, country=country, description="", updated_at=now))
        s.add(
            Node(
                id="de-1",
                site="fra",
                pool="default",
                executor="local",
                gpus=8,
                gpu_model="h100",
                gpu_ids=[str(i) for i in range(8)],
                cpus=32,
                memory_mb=256_000,
                schedulable=True,
                updated_at=now,
            )
        )


def write_version(root: Path, name: str, number: int) -> tuple[Path, str]:
    """A read-only directory with two files (one nested); returns it and a checksum."""
    path = root / name / f"v{number}"
    (path / "nested").mkdir(parents=True)
    (path / "part-0.txt").write_text(f"{name} {number}: Jan Jansen, 1970\n")
    (path / "nested" / "part-1.txt").write_text("Piet Pietersen, 1980\n")
    digest = hashlib.sha256(f"{name}/{number}".encode()).hexdigest()
    for current, _dirs, files in os.walk(path, topdown=False):
        for file in files:
            os.chmod(Path(current) / file, 0o444)
        os.chmod(current, 0o555)  # noqa: S103 - read-only, as registered
    os.chmod(path.parent, 0o755)  # noqa: S103
    return path, digest


def add_dataset(
    db: Database,
    root: Path,
    name: str,
    *,
    owner: str | None = "lab",
    versions: int = 1,
    controller: str = "University of Amsterdam",
    retention_until: float = T0 + YEAR,
    classification: str = "personal",
    residency: str = "EU",
    path: Path | None = None,
) -> Data:
    with db.session() as s:
        owner_id = (
            s.scalars(select(Project.id).where(Project.name == owner)).one() if owner else None
        )
        dataset = Dataset(
            name=name,
            owner_project_id=owner_id,
            description=f"{name} for tests",
            controller=controller,
            processor="aifactory",
            created_by="admin",
            created_at=T0,
        )
        s.add(dataset)
        s.flush()
        ids, paths, sums = [], [], []
        for number in range(1, versions + 1):
            where, digest = (path, "0" * 64) if path else write_version(root, name, number)
            version = DatasetVersion(
                dataset_id=dataset.id,
                version=number,
                path=str(where),
                size_bytes=60,
                files=2,
                sha256=digest,
                classification=classification,
                legal_basis="public_task" if classification != "public" else None,
                special_condition=None,
                dpia_ref="DPIA-7" if classification == "personal" else None,
                purposes=["training", "evaluation"],
                residency=residency,
                retention_until=retention_until,
                licence="CC-BY-4.0",
                state="present",
                registered_by="admin",
                registered_at=T0,
                erased_at=None,
            )
            s.add(version)
            s.flush()
            ids.append(version.id)
            paths.append(where)
            sums.append(digest)
        return Data(dataset.id, ids, paths, sums)


def grant(db: Database, dataset_id: int, project: str, *, purpose: str = "training") -> int:
    with db.session() as s:
        row = DatasetGrant(
            dataset_id=dataset_id,
            project_id=s.scalars(select(Project.id).where(Project.name == project)).one(),
            purpose=purpose,
            until=T0 + 100 * DAY,
            granted_by="owen",
            granted_at=T0,
        )
        s.add(row)
        s.flush()
        return row.id


def add_job(
    db: Database,
    *,
    project: str,
    user: str,
    state: JobState,
    reads: Sequence[tuple[int, int]] = (),  # (dataset id, version id)
    node: str | None = "node-1",
    jobs_dir: Path | None = None,
    now: float = T0,
) -> int:
    """A job row in `state`, reading `reads`, placed on `node`; with a job directory holding
    attempt-1/output.log when `jobs_dir` is given."""
    with db.session() as s:
        job = NewJob(
            project_id=s.scalars(select(Project.id).where(Project.name == project)).one(),
            user_id=s.scalars(select(User.id).where(User.name == user)).one(),
            name="train",
            command=["python", "train.py"],
            env={},
            working_dir=None,
            gpus_per_node=1,
            nodes=1,
            cpus_per_node=1,
            memory_mb_per_node=1024,
            gpu_model=None,
            time_limit_s=3600,
            preemptible=False,
            priority=0,
            idempotency_key=None,
            submitted_at=now,
            updated_at=now,
        )
        insert_jobs(s, [job], [user])
        row = s.get_one(Job, job.id)
        row.state = state.value
        if node is not None and state is not JobState.PENDING:
            row.placement = {node: {"gpus": 1, "gpu_ids": ["0"]}}
            row.started_at = now
        for dataset_id, version_id in reads:
            s.add(
                JobDataset(
                    job_id=job.id,
                    version_id=version_id,
                    dataset_id=dataset_id,
                    env_name="AIFACTORY_DATASET_X",
                )
            )
    if jobs_dir is not None:
        log = jobs_dir / str(job.id) / "attempt-1" / "output.log"
        log.parent.mkdir(parents=True)
        log.write_text(f"job {job.id}: epoch 1 loss 0.5\n")
    return job.id


def end_job(db: Database, job_id: int, state: JobState = JobState.CANCELLED) -> None:
    """What the control loop does once a job it was asked to stop has stopped."""
    with db.session() as s:
        row = s.get_one(Job, job_id)
        row.state = state.value
        row.ended_at = T0 + 60


def version_state(db: Database, version_id: int) -> str:
    with db.read() as s:
        return s.get_one(DatasetVersion, version_id).state
