"""Exporting all of a project's data as one ZIP (owners and admins), audited.

The ZIP is written to a file the caller gives (a temporary file the API streams from), inside
the caller's read session; the `project.export` event is appended afterwards in a short
transaction of its own, as every audited read is (governance.audit).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.governance.export import write_export
from aifactory.services.closure import project_for
from aifactory.services.principal import Principal
from aifactory.store.db import Database
from aifactory.store.models import Project


def export_project(
    session: Session,
    principal: Principal,
    *,
    project: str,
    out: IO[bytes],
    jobs_dir: Path | None,
    now: float,
) -> tuple[Project, list[str]]:
    """Write the project's ZIP to `out`; returns the project and the files written."""
    found = project_for(session, principal, project, Action.PROJECT_EXPORT)
    names = write_export(
        session, found, out, jobs_dir=jobs_dir, exported_by=principal.name, now=now
    )
    return found, names


def record_export(
    db: Database, principal: Principal, *, project: Project, files: int, now: float
) -> None:
    audit.record_apart(
        db,
        at=now,
        actor=principal.name,
        action="project.export",
        object=f"project:{project.name}",
        source=principal.source,
        project_id=project.id,
        detail={"files": files},
    )
