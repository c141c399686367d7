"""Python environments: names for builds, the builds themselves, and what jobs ran in them.

A *build* is one environment as its content makes it: the requirements (canonical, sorted),
the Python (major.minor), the platform and the registry (`domain.environments.environment_key`).
The same content is built once and shared; a *named environment* is a project's (or, made by
an admin, the facility's) name for a build. A job names an environment at submission and keeps
the build's key, so renaming or removing the name never changes what a job ran in.

A build goes queued → building → ready | failed (store.builds); the builder (control.builds)
claims queued builds one at a time. A failed build is queued again when someone asks for the
same content, and one interrupted by a crash of the control plane at the next start.

Who may (domain.permissions): SOFTWARE_READ to see a project's environments (the facility's are
seen by everyone), ENVIRONMENT_CREATE to name a new one or remove one (the facility's: admins).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from aifactory.domain.environments import (
    RequirementsError,
    environment_key,
    parse_python,
    parse_requirements,
)
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.software import layout
from aifactory.store.builds import BuildState
from aifactory.store.models import EnvironmentBuild, Job, Project, SoftwareEnvironment


@dataclass(frozen=True, slots=True)
class BuildTarget:
    """What, besides the requirements, makes one build differ from another on this facility:
    the registry it builds from, the platform, and the Python it uses when none is asked."""

    index_url: str | None
    platform: str
    default_python: str  # "3.11"

    @classmethod
    def of_this_host(cls, index_url: str | None = None) -> BuildTarget:
        """This host's platform and the Python the facility runs on."""
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        return cls(index_url, sysconfig.get_platform(), version)


@dataclass(frozen=True, slots=True)
class EnvironmentView:
    name: str
    project: str | None  # None: the facility's
    key: str
    state: str
    python: str
    python_version: str | None
    requirements: list[str]
    packages: list[dict[str, Any]]
    error: str | None
    size_bytes: int | None
    created_by: str
    created_at: float
    build_seconds: float | None
    jobs: int  # jobs of the projects the reader sees that ran (or wait to run) in this build


@dataclass(frozen=True, slots=True)
class JobUse:
    id: int
    name: str
    project: str
    state: str
    submitted_at: float


def create_environment(
    session: Session,
    principal: Principal,
    *,
    name: str,
    project: str | None,
    requirements: str,
    python: str | None,
    target: BuildTarget,
    now: float,
) -> EnvironmentView:
    """Name the build of `requirements` (queued unless it exists); `project` None: the
    facility's environment (admins)."""
    owner = _owner(session, principal, project)
    owner_id = owner.id if owner is not None else None
    if owner is None:
        principal.authorize(Action.ENVIRONMENT_CREATE)
    if _named(session, owner_id, name) is not None:
        where = f"project {owner.name}" if owner is not None else "the facility"
        raise Conflict(f"{where} has an environment named {name!r} already", field="name")
    try:
        wanted = parse_requirements(requirements)
        version = parse_python(python) if python else target.default_python
    except RequirementsError as exc:
        raise InvalidInput(str(exc), field="requirements") from None
    except ValueError as exc:
        raise InvalidInput(str(exc), field="python") from None
    key = environment_key(wanted, python=version, platform=target.platform, index=target.index_url)
    build = _queue(session, key, wanted, version, target.index_url, now)
    session.add(
        SoftwareEnvironment(
            project_id=owner_id, name=name, build_key=key, created_by=principal.name, created_at=now
        )
    )
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="environment.create",
        object=f"environment:{name}",
        source=principal.source,
        project_id=owner_id,
        detail={"key": key, "python": version, "requirements": len(wanted)},
        at=now,
    )
    named = _named(session, owner_id, name)
    assert named is not None
    return _view(owner, name, build, named, _jobs_in(session, principal, [key]).get(key, 0))


def _owner(session: Session, principal: Principal, project: str | None) -> Project | None:
    if project is None:
        return None
    return project_by_name(session, principal, project, action=Action.ENVIRONMENT_CREATE)


def _queue(
    session: Session,
    key: str,
    requirements: Sequence[str],
    python: str,
    index_url: str | None,
    now: float,
) -> EnvironmentBuild:
    """The build of this content: new, or asked for again after it failed."""
    build = session.get(EnvironmentBuild, key)
    if build is None:
        build = EnvironmentBuild(
            key=key,
            python=python,
            requirements=list(requirements),
            index_url=index_url,
            state=BuildState.QUEUED,
            requested_at=now,
        )
        session.add(build)
    elif build.state == BuildState.FAILED:
        build.state, build.error, build.requested_at = BuildState.QUEUED, None, now
        build.started_at = build.finished_at = None
    return build


def list_environments(
    session: Session, principal: Principal, *, project: str | None
) -> list[EnvironmentView]:
    """The facility's environments and those of `project` (or of every project the reader
    may see environments of, when none is named)."""
    scopes = _readable_projects(session, principal, project)
    stmt = select(SoftwareEnvironment).order_by(SoftwareEnvironment.name)
    if scopes is not None:
        stmt = stmt.where(
            or_(
                SoftwareEnvironment.project_id.is_(None), SoftwareEnvironment.project_id.in_(scopes)
            )
        )
    rows = session.execute(
        stmt.add_columns(EnvironmentBuild, Project)
        .join(EnvironmentBuild, EnvironmentBuild.key == SoftwareEnvironment.build_key)
        .outerjoin(Project, Project.id == SoftwareEnvironment.project_id)
    ).all()
    jobs = _jobs_in(session, principal, [build.key for _, build, _ in rows])
    return [
        _view(owner, named.name, build, named, jobs.get(build.key, 0))
        for named, build, owner in rows
    ]


def show_environment(
    session: Session, principal: Principal, name: str, *, project: str | None
) -> EnvironmentView:
    named, owner = _find(session, principal, name, project)
    build = session.get(EnvironmentBuild, named.build_key)
    assert build is not None
    jobs = _jobs_in(session, principal, [build.key]).get(build.key, 0)
    return _view(owner, name, build, named, jobs)


def environment_jobs(
    session: Session, principal: Principal, name: str, *, project: str | None, limit: int = 100
) -> list[JobUse]:
    """The newest jobs that named this environment's build, of projects the reader sees."""
    named, _ = _find(session, principal, name, project)
    return jobs_using(session, principal, Job.environment_key == named.build_key, limit=limit)


def jobs_using(
    session: Session, principal: Principal, where: ColumnElement[bool], *, limit: int
) -> list[JobUse]:
    """The newest jobs matching `where` (an environment's or an image's), of the projects
    whose jobs the reader may see."""
    stmt = (
        select(Job.id, Job.name, Project.name, Job.state, Job.submitted_at)
        .join(Project, Project.id == Job.project_id)
        .where(where)
        .order_by(Job.id.desc())
        .limit(limit)
    )
    seen = principal.projects_for(Action.JOB_READ)
    if seen is not None:
        stmt = stmt.where(Job.project_id.in_(seen))
    return [JobUse(*row) for row in session.execute(stmt)]


def delete_environment(
    session: Session, principal: Principal, name: str, *, project: str | None, now: float
) -> None:
    """The name goes; the build stays (jobs ran in it, and another name may share it)."""
    named, owner = _find(session, principal, name, project)
    principal.authorize(Action.ENVIRONMENT_CREATE, owner.id if owner is not None else None)
    session.delete(named)
    audit.record(
        session,
        actor=principal.name,
        action="environment.delete",
        object=f"environment:{name}",
        source=principal.source,
        project_id=named.project_id,
        detail={"key": named.build_key},
        at=now,
    )


def resolve_for_job(session: Session, project_id: int, name: str) -> str:
    """The key of the build a job of `project_id` runs in: the project's environment of that
    name, else the facility's; it must be ready."""
    named = _named(session, project_id, name) or _named(session, None, name)
    if named is None:
        raise InvalidInput(
            f"no environment named {name!r} in the project or the facility "
            "(`aifactory env list` shows them)",
            field="environment",
        )
    build = session.get(EnvironmentBuild, named.build_key)
    assert build is not None
    if build.state == BuildState.FAILED:
        raise InvalidInput(
            f"environment {name!r} failed to build: `aifactory env show {name}` says why",
            field="environment",
        )
    if build.state != BuildState.READY:
        raise InvalidInput(
            f"environment {name!r} is still being built ({build.state}): submit when "
            f"`aifactory env show {name}` says ready",
            field="environment",
        )
    return build.key


def build_log(software_dir: Path | None, key: str, *, lines: int) -> list[str]:
    """The last `lines` of a build's output (its last 256 KiB at most)."""
    path = layout.build_log(software_dir, key) if software_dir is not None else None
    if path is None or not path.is_file():
        return []
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 256 * 1024))
        text = handle.read().decode(errors="replace")
    return text.splitlines()[-lines:]


# ---- lookups --------------------------------------------------------------------------------


def _named(session: Session, project_id: int | None, name: str) -> SoftwareEnvironment | None:
    owner = (
        SoftwareEnvironment.project_id.is_(None)
        if project_id is None
        else SoftwareEnvironment.project_id == project_id
    )
    stmt = select(SoftwareEnvironment).where(owner, SoftwareEnvironment.name == name)
    return session.scalars(stmt).first()


def _find(
    session: Session, principal: Principal, name: str, project: str | None
) -> tuple[SoftwareEnvironment, Project | None]:
    """The project's environment of that name (if a project is named), else the facility's."""
    owner = None
    if project is not None:
        owner = project_by_name(session, principal, project, action=Action.SOFTWARE_READ)
        named = _named(session, owner.id, name)
        if named is not None:
            return named, owner
    named = _named(session, None, name)
    if named is None:
        where = f" in project {project} or" if project is not None else ""
        raise NotFound(f"no environment named {name!r}{where} in the facility", field="name")
    return named, None


def _readable_projects(
    session: Session, principal: Principal, project: str | None
) -> list[int] | None:
    if project is not None:
        return [project_by_name(session, principal, project, action=Action.SOFTWARE_READ).id]
    return principal.projects_for(Action.SOFTWARE_READ)


def _view(
    owner: Project | None,
    name: str,
    build: EnvironmentBuild,
    named: SoftwareEnvironment,
    jobs: int,
) -> EnvironmentView:
    took = (
        build.finished_at - build.started_at
        if build.finished_at is not None and build.started_at is not None
        else None
    )
    return EnvironmentView(
        name=name,
        project=owner.name if owner is not None else None,
        key=build.key,
        state=build.state,
        python=build.python,
        python_version=build.python_version,
        requirements=list(build.requirements),
        packages=list(build.packages or []),
        error=build.error,
        size_bytes=build.size_bytes,
        created_by=named.created_by,
        created_at=named.created_at,
        build_seconds=took,
        jobs=jobs,
    )


def _jobs_in(session: Session, principal: Principal, keys: Sequence[str]) -> dict[str, int]:
    """How many jobs (of the projects the reader sees) named each build: one query."""
    stmt = (
        select(Job.environment_key, func.count())
        .where(Job.environment_key.in_(set(keys)))
        .group_by(Job.environment_key)
    )
    seen = principal.projects_for(Action.JOB_READ)
    if seen is not None:
        stmt = stmt.where(Job.project_id.in_(seen))
    return {str(key): int(count) for key, count in session.execute(stmt)}
