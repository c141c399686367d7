"""A project's data, whole, as one ZIP (GDPR Art. 15 and 20: access and portability).

Layout (every JSON file is UTF-8; times are UNIX seconds, as stored):
- `manifest.json`    the project, when and by whom exported, and the files below;
- `project.json`     the project, its organisation, members and closure (if any);
- `jobs.json`        every job of the project with its events and the dataset versions it read;
- `usage.json`       its usage records; `allocations.json` its allocations;
- `invoices.json`    its invoices as issued (lines and totals; the PDFs are at /invoices);
- `datasets.json`    the datasets it owns, with their versions and every grant of them;
- `grants.json`      the grants it holds on other projects' and facility datasets;
- `audit.json`       the audit events about the project, oldest first;
- `logs/<job>/attempt-<n>.log`  each attempt's log (its standard output and error).
Data files of datasets are not copied: they lie in the data root, named in `datasets.json`.

The logs are the facility's records of the attempts, never what a job keeps in its own
directory (which the job controls: a link or a pipe there could make the facility, reading as
root, copy its secrets into the ZIP or hang). Each is opened without following a link, read
only if it is a plain file, and at most `MAX_LOG_BYTES` of it.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import LargeBinary, select
from sqlalchemy.orm import Session

from aifactory.governance.audit import BATCH
from aifactory.store.models import (
    Allocation,
    AuditEvent,
    Dataset,
    DatasetGrant,
    DatasetVersion,
    IssuedInvoice,
    Job,
    JobDataset,
    JobEvent,
    Member,
    Organisation,
    Project,
    ProjectClosure,
    UsageRecord,
    User,
)

LEAVE_OUT = {"invoices": {"pdf", "csv"}, "project_closures": {"certificate_pdf", "report"}}


def write_export(
    session: Session,
    project: Project,
    out: IO[bytes],
    *,
    jobs_dir: Path | None,
    exported_by: str,
    now: float,
) -> list[str]:
    """Write the project's ZIP to `out`; returns the names of the files in it."""
    documents: dict[str, Any] = {
        "project.json": _project(session, project),
        "jobs.json": _jobs(session, project.id),
        "usage.json": _rows(session, UsageRecord, UsageRecord.project_id == project.id),
        "allocations.json": _rows(session, Allocation, Allocation.project_id == project.id),
        "invoices.json": _rows(session, IssuedInvoice, IssuedInvoice.project_id == project.id),
        "datasets.json": _datasets(session, project.id),
        "grants.json": _grants_held(session, project.id),
        "audit.json": list(_audit(session, project.id)),
    }
    logs = list(_logs(documents["jobs.json"], jobs_dir))
    names = ["manifest.json", *documents, *(name for name, _ in logs)]
    manifest = {
        "project": project.name,
        "exported_at": now,
        "exported_by": exported_by,
        "times": "UNIX seconds",
        "files": names,
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", _json(manifest))
        for name, document in documents.items():
            archive.writestr(name, _json(document))
        for name, path in logs:
            _copy_log(archive, name, path)
    return names


MAX_LOG_BYTES = 256 * 1024 * 1024
CUT = b"\n[aifactory: the log goes on; the export keeps its first 256 MiB]\n"


def _copy_log(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    with open(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        with archive.open(name, "w", force_zip64=True) as target:
            left = MAX_LOG_BYTES
            while left > 0 and (chunk := source.read(min(left, 1024 * 1024))):
                target.write(chunk)
                left -= len(chunk)
            if left == 0 and source.read(1):
                target.write(CUT)


def _json(document: Any) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True)


def columns(row: Any) -> dict[str, Any]:
    """An ORM row's columns as JSON values (binary columns and those in LEAVE_OUT left out)."""
    table = row.__table__
    skip = LEAVE_OUT.get(table.name, set())
    return {
        c.key: getattr(row, c.key)
        for c in table.columns
        if c.key not in skip and not isinstance(c.type, LargeBinary)
    }


def _rows(session: Session, model: Any, where: Any) -> list[dict[str, Any]]:
    return [columns(row) for row in session.scalars(select(model).where(where).order_by(model.id))]


def _project(session: Session, project: Project) -> dict[str, Any]:
    organisation = session.get(Organisation, project.organisation_id)
    members = session.execute(
        select(Member, User.name, User.email)
        .join(User, User.id == Member.user_id)
        .where(Member.project_id == project.id)
        .order_by(User.name)
    )
    closure = session.get(ProjectClosure, project.id)
    return {
        "project": columns(project),
        "organisation": columns(organisation) if organisation else None,
        "members": [
            {"user": name, "email": email, "role": m.role, "since": m.created_at}
            for m, name, email in members
        ],
        "closure": columns(closure) if closure else None,
    }


def _jobs(session: Session, project_id: int) -> list[dict[str, Any]]:
    jobs = list(session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id)))
    ids = [j.id for j in jobs]
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    stmt = select(JobEvent).where(JobEvent.job_id.in_(ids)).order_by(JobEvent.id)
    for event in session.scalars(stmt):
        events[event.job_id].append(columns(event))
    used: dict[int, list[dict[str, Any]]] = defaultdict(list)
    reads = (
        select(JobDataset, Dataset.name, DatasetVersion.version)
        .join(Dataset, Dataset.id == JobDataset.dataset_id)
        .join(DatasetVersion, DatasetVersion.id == JobDataset.version_id)
        .where(JobDataset.job_id.in_(ids))
    )
    for link, dataset, version in session.execute(reads):
        used[link.job_id].append({"dataset": dataset, "version": version, "env": link.env_name})
    return [{**columns(job), "events": events[job.id], "datasets": used[job.id]} for job in jobs]


def _datasets(session: Session, project_id: int) -> list[dict[str, Any]]:
    owned = list(
        session.scalars(
            select(Dataset).where(Dataset.owner_project_id == project_id).order_by(Dataset.id)
        )
    )
    ids = [d.id for d in owned]
    versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for version in session.scalars(
        select(DatasetVersion).where(DatasetVersion.dataset_id.in_(ids)).order_by(DatasetVersion.id)
    ):
        versions[version.dataset_id].append(columns(version))
    grants: dict[int, list[dict[str, Any]]] = defaultdict(list)
    given = (
        select(DatasetGrant, Project.name)
        .join(Project, Project.id == DatasetGrant.project_id)
        .where(DatasetGrant.dataset_id.in_(ids))
        .order_by(DatasetGrant.id)
    )
    for grant, grantee in session.execute(given):
        grants[grant.dataset_id].append({**columns(grant), "project": grantee})
    return [{**columns(d), "versions": versions[d.id], "grants": grants[d.id]} for d in owned]


def _grants_held(session: Session, project_id: int) -> list[dict[str, Any]]:
    stmt = (
        select(DatasetGrant, Dataset.name)
        .join(Dataset, Dataset.id == DatasetGrant.dataset_id)
        .where(DatasetGrant.project_id == project_id)
        .order_by(DatasetGrant.id)
    )
    return [{**columns(g), "dataset": name} for g, name in session.execute(stmt)]


def _audit(session: Session, project_id: int) -> Iterable[dict[str, Any]]:
    """The project's audit events, read `BATCH` at a time in seq order."""
    after = 0
    while True:
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.project_id == project_id, AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(BATCH)
        )
        found = list(session.scalars(stmt))
        yield from (columns(e) for e in found)
        if len(found) < BATCH:
            return
        after = found[-1].seq


def _logs(jobs: list[dict[str, Any]], jobs_dir: Path | None) -> Iterable[tuple[str, Path]]:
    """(name in the ZIP, file) for each attempt's log: `attempt-<n>/output.log` (the local
    executor's), `attempt-<n>/job/output.log` (Slurm's), or the job's own `output.log` (a job
    from before attempts had directories)."""
    if jobs_dir is None:
        return
    for job in jobs:
        home = jobs_dir / str(job["id"])
        if (home / "output.log").exists():
            yield f"logs/{job['id']}/attempt-1.log", home / "output.log"
        numbers = sorted(
            int(p.name.removeprefix("attempt-"))
            for p in home.glob("attempt-*")
            if p.name.removeprefix("attempt-").isdigit() and not p.is_symlink()
        )
        for attempt in numbers:
            own = home / f"attempt-{attempt}"
            for path in (own / "output.log", own / "job" / "output.log"):
                if path.exists():
                    yield f"logs/{job['id']}/attempt-{attempt}.log", path
                    break
