"""The states of an environment's build, and the builder's steps through them (control.builds).

queued → building (claimed by one builder: host:pid) → ready (its packages) | failed (pip's
error). A build whose builder is gone is queued again; asking again for a failed one queues it
again (services.environments).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactory.store.models import EnvironmentBuild


class BuildState:
    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


def claim_build(session: Session, *, builder: str, now: float) -> EnvironmentBuild | None:
    """The oldest queued build, now marked building by `builder` (host:pid). The change is
    conditional: of two builders that read the same row, one gets it."""
    stmt = (
        select(EnvironmentBuild.key)
        .where(EnvironmentBuild.state == BuildState.QUEUED)
        .order_by(EnvironmentBuild.requested_at)
        .limit(1)
    )
    key = session.scalars(stmt).first()
    if key is None:
        return None
    claimed = session.execute(
        update(EnvironmentBuild)
        .where(EnvironmentBuild.key == key, EnvironmentBuild.state == BuildState.QUEUED)
        .values(state=BuildState.BUILDING, builder=builder, started_at=now)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    build = session.get(EnvironmentBuild, key)
    if build is not None:
        session.refresh(build)
    return build


def finish_build(
    session: Session,
    key: str,
    *,
    now: float,
    error: str | None = None,
    packages: Sequence[dict[str, Any]] = (),
    python_version: str | None = None,
    size_bytes: int | None = None,
) -> None:
    build = session.get(EnvironmentBuild, key)
    if build is None or build.state != BuildState.BUILDING:
        return
    build.finished_at = now
    if error is not None:
        build.state, build.error = BuildState.FAILED, error
        return
    build.state, build.packages = BuildState.READY, list(packages)
    build.python_version, build.size_bytes = python_version, size_bytes


def requeue_interrupted(session: Session, *, gone: Callable[[str], bool]) -> int:
    """Builds whose builder is `gone` (a control plane stopped mid-build): built again from
    the start."""
    building = session.scalars(
        select(EnvironmentBuild).where(EnvironmentBuild.state == BuildState.BUILDING)
    )
    again = [b for b in building if b.builder is None or gone(b.builder)]
    for build in again:
        build.state, build.started_at, build.builder = BuildState.QUEUED, None, None
    return len(again)
