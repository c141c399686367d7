"""A job's training progress, as the job reported it, and what its preemptions cost.

The source of truth is the progress file the facility keeps in the job's own directory
(domain.jobfiles), not a table: the job writes it, the facility keeps it for as long as the
job's data (it is removed with the job's directory) and reads it when asked. So nothing is
copied, and nothing can disagree with what the job wrote (docs/recipes.md says why).

Reading is bounded: at most the last `MAX_BYTES` of the file are read (a cut first line is
skipped like any bad one), and the loss curves are thinned to `points` points. Who may read it:
whoever may read the job (JOB_READ); another project's job is not found.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from aifactory.domain import progress
from aifactory.domain.jobfiles import checkpoint_dir, own_files, progress_file
from aifactory.services.jobs import get_job
from aifactory.services.principal import Principal
from aifactory.store.jobs import events_of

MAX_BYTES = 4 * 1024 * 1024
CURVE_POINTS = 400
RECENT = 20


@dataclass(frozen=True, slots=True)
class JobProgress:
    job_id: int
    checkpoint_dir: Path | None  # None: this facility keeps no job directories
    records: int  # how many were read
    truncated: bool  # only the file's tail was read
    latest: progress.Latest | None  # None: the job reported nothing yet
    recent: list[progress.Record]  # the last RECENT records, oldest first
    train_loss: list[tuple[float, float]]  # (step, loss), thinned
    eval_loss: list[tuple[float, float]]
    preemptions: list[progress.Preemption]

    @property
    def lost_gpu_s(self) -> float:
        return sum(p.lost_gpu_s for p in self.preemptions)


def job_progress(
    session: Session,
    principal: Principal,
    job_id: int,
    *,
    jobs_dir: Path | None,
    points: int = CURVE_POINTS,
) -> JobProgress:
    job = get_job(session, principal, job_id)
    home = own_files(jobs_dir / str(job_id)) if jobs_dir is not None else None
    text, truncated = read_tail(progress_file(home)) if home is not None else ("", False)
    records = progress.parse(text)
    runs = progress.preempted_runs(
        (e.at, e.from_state, e.to_state) for e in events_of(session, job_id)
    )
    train, evals = progress.loss_curves(records, points)
    return JobProgress(
        job_id=job_id,
        checkpoint_dir=checkpoint_dir(home) if home is not None else None,
        records=len(records),
        truncated=truncated,
        latest=progress.latest(records) if records else None,
        recent=records[-RECENT:],
        train_loss=train,
        eval_loss=evals,
        preemptions=progress.preemption_losses(records, runs, job.gpus_per_node * job.nodes),
    )


def read_tail(path: Path, limit: int = MAX_BYTES) -> tuple[str, bool]:
    """The file's last `limit` bytes as text, and whether that is less than all of it. Only a
    plain file is read: a link is not followed (a job could point its progress file at another
    job's), and a pipe or device is refused without waiting on it (non-blocking open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "", False  # none yet, or a link
    with open(fd, "rb") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            return "", False
        size = found.st_size
        handle.seek(max(0, size - limit))
        data = handle.read(limit)
    return data.decode("utf-8", errors="replace"), size > limit
