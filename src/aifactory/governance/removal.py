"""What erasure and closure both do to make data go: record an erasure, stop the jobs that
still use the data, and remove files under a root — and only under it.

Invariants:
- A path is removed only when, fully resolved (symbolic links followed), it lies strictly
  inside its root; anything else is refused (`OutsideRoot`) and nothing is touched.
- Removal is idempotent: a path already gone is fine, so a removal cut short by a crash is
  simply run again. Dataset versions are made read-only at registration, so write permission
  is given back to every directory first (links are never followed, nor chmod-ed).
- A job is stopped the way `aifactory cancel` stops it: `cancel_requested` with an event (the
  control loop then stops it and records CANCELLED); a waiting job is cancelled at once.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import ErasureTrigger
from aifactory.domain.erasure import OPEN, ErasureState
from aifactory.domain.jobs import ACTIVE, WAITING, JobState
from aifactory.governance import audit
from aifactory.store.jobs import lock_job, switch_job_state
from aifactory.store.models import Dataset, DatasetVersion, Erasure, Job, JobDataset, JobEvent

Remover = Callable[[Path, Path], None]  # (path, root): removes path, which lies inside root
OPEN_STATES = [s.value for s in OPEN]


class OutsideRoot(RuntimeError):
    """A path to remove is not inside the root it must be in (never removed)."""


def iso(ts: float | None) -> str | None:
    """A moment in a report: ISO 8601, UTC."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


# ---- erasures ---------------------------------------------------------------------------------


def has_open_erasure(version_id: Any) -> Any:
    """A clause: the version has an erasure not yet done."""
    return exists().where(Erasure.version_id == version_id, Erasure.state.in_(OPEN_STATES))


def record_erasure(
    session: Session,
    version: DatasetVersion,
    *,
    trigger: ErasureTrigger,
    reason: str,
    by: str,
    now: float,
) -> Erasure:
    erasure = Erasure(
        version_id=version.id,
        trigger=trigger.value,
        reason=reason,
        requested_by=by,
        requested_at=now,
        state=ErasureState.RECORDED.value,
    )
    session.add(erasure)
    session.flush()
    return erasure


def request_event(
    erasure: Erasure,
    version: DatasetVersion,
    dataset: Dataset,
    *,
    by: str,
    stopped: list[int],
    source: str | None = None,
) -> audit.NewEvent:
    return audit.NewEvent(
        actor=by,
        action="erasure.request",
        object=f"dataset:{dataset.name}",
        source=source,
        project_id=dataset.owner_project_id,
        detail={
            "erasure": erasure.id,
            "version": version.version,
            "trigger": erasure.trigger,
            "reason": erasure.reason,
            "stopped_jobs": stopped,
        },
    )


# ---- files -----------------------------------------------------------------------------------


def remove_tree(path: Path, root: Path) -> None:
    """Remove a file or a directory tree that lies inside `root`; a missing path is fine.

    `path` is taken as it is (stored resolved), never resolved again: were it, or a directory
    on the way to it, swapped for a link since (someone with write access to a project's
    area), resolving would lead the removal to whatever the link points at. A link on the way
    is refused; a link at `path` is removed itself, not what it points at."""
    base = Path(os.path.realpath(root))
    path = Path(os.path.abspath(path))
    if path == base or not path.is_relative_to(base):
        raise OutsideRoot(f"{path} is not inside {root}: not removed")
    if os.path.realpath(path.parent) != str(path.parent):
        raise OutsideRoot(f"a link lies on the way to {path}: not removed")
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        _writable_dirs(path)
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _writable_dirs(top: Path) -> None:
    """Give the owner write (and search) permission on every directory in the tree, so that
    read-only versions can be emptied. os.walk does not descend into links."""
    for current, _dirs, _files in os.walk(top):
        mode = os.lstat(current).st_mode
        if stat.S_ISDIR(mode) and mode & 0o700 != 0o700:
            os.chmod(current, stat.S_IMODE(mode) | 0o700)


def tree_size(path: Path) -> tuple[int, int]:
    """(files, bytes) of a file or a tree, links not followed; (0, 0) when it is missing."""
    if not os.path.lexists(path):
        return 0, 0
    if not path.is_dir() or path.is_symlink():
        return 1, path.lstat().st_size
    files = size = 0
    for current, _dirs, names in os.walk(path):
        for name in names:
            try:  # a job's own directory changes under us while it runs
                size += os.lstat(os.path.join(current, name)).st_size
            except OSError:
                continue
            files += 1
    return files, size


# ---- jobs ------------------------------------------------------------------------------------


def active_jobs_using(session: Session, version_ids: Iterable[int]) -> list[Job]:
    """Active jobs (ADMITTED, RUNNING) that declared any of these versions, by id."""
    ids = list(version_ids)
    if not ids:
        return []
    readers = select(JobDataset.job_id).where(JobDataset.version_id.in_(ids))
    stmt = select(Job).where(Job.id.in_(readers), Job.state.in_([s.value for s in ACTIVE]))
    stmt = stmt.order_by(Job.id)
    return list(session.scalars(stmt))


def active_jobs_of(session: Session, project_id: int) -> list[Job]:
    stmt = select(Job).where(Job.project_id == project_id, Job.state.in_([s.value for s in ACTIVE]))
    return list(session.scalars(stmt.order_by(Job.id)))


@dataclass(slots=True)
class Stopped:
    """The jobs an act stopped or cancelled, and the audit events to append for them last
    (governance.audit: records come after every other lock is taken)."""

    job_ids: list[int] = field(default_factory=list)
    events: list[audit.NewEvent] = field(default_factory=list)


def stop_jobs(
    session: Session,
    jobs: Iterable[Job],
    *,
    why: str,
    now: float,
    actor: str,
    source: str | None = None,
) -> Stopped:
    """Ask the control loop to stop these active jobs (as a cancel does), each with a job
    event; a job asked before is left as it is. Locks the jobs first, in id order."""
    stopped = Stopped()
    locked = [lock_job(session, j.id) or j for j in sorted(jobs, key=lambda j: j.id)]
    for job in locked:
        if JobState(job.state) not in ACTIVE or job.cancel_requested:
            continue
        job.cancel_requested = True
        job.updated_at = now
        session.add(
            JobEvent(
                job_id=job.id,
                at=now,
                from_state=job.state,
                to_state=job.state,
                reason=f"cancel requested: {why}",
                actor=actor,
            )
        )
        stopped.job_ids.append(job.id)
        stopped.events.append(_cancel_event(job, why=why, actor=actor, source=source))
    return stopped


def cancel_waiting_jobs(
    session: Session, project_id: int, *, why: str, now: float, actor: str
) -> Stopped:
    """Cancel the project's jobs that have not started (pending, held, preempted)."""
    resting = [s.value for s in (*WAITING, JobState.PREEMPTED)]
    stmt = select(Job).where(Job.project_id == project_id, Job.state.in_(resting))
    cancelled = Stopped()
    for job in list(session.scalars(stmt.order_by(Job.id).with_for_update())):
        if job.state == JobState.PREEMPTED.value:
            switch_job_state(
                session, job, JobState.PENDING, now=now, actor=actor, reason="requeued to cancel"
            )
        switch_job_state(session, job, JobState.CANCELLED, now=now, actor=actor, reason=why)
        cancelled.job_ids.append(job.id)
        cancelled.events.append(_cancel_event(job, why=why, actor=actor, source=None))
    return cancelled


def _cancel_event(job: Job, *, why: str, actor: str, source: str | None) -> audit.NewEvent:
    return audit.NewEvent(
        actor=actor,
        action="job.cancel",
        object=f"job:{job.id}",
        source=source,
        project_id=job.project_id,
        detail={"reason": why},
    )
