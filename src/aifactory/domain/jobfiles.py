"""What the facility keeps for a job across its attempts, and tells the job about it.

Every job has a directory, `<jobs dir>/<job id>/`, shared by its attempts and removed with the
job's data (project closure; see docs/recipes.md). It is the facility's; in it, `work/` is the
job's own (its HOME and default working directory, the only part its sandbox shows it), and in
that the facility keeps, for the job's own use:
- `checkpoints/`    the job's checkpoint directory: made before the first attempt starts, the
                    same for every attempt, never emptied on a requeue;
- `progress.jsonl`  the progress channel: the job appends one JSON object per line
                    (domain.progress reads them).
Jobs started before the sandbox kept these in the job's directory itself (`legacy`).

The job learns both, and the grace period it gets between SIGTERM and SIGKILL, from its
environment (`contract_env`). Pure: paths in, paths and strings out.
"""

from __future__ import annotations

from pathlib import Path

WORK = "work"
CHECKPOINTS = "checkpoints"
PROGRESS = "progress.jsonl"
CHECKPOINT_DIR_ENV = "AIFACTORY_CHECKPOINT_DIR"
PROGRESS_FILE_ENV = "AIFACTORY_PROGRESS_FILE"
GRACE_ENV = "AIFACTORY_GRACE_S"


def work_dir(job_dir: Path) -> Path:
    return job_dir / WORK


def own_files(job_dir: Path) -> Path:
    """Where the job's checkpoints and progress are: `work/`, or the job's directory itself for
    a job that ran before there was one."""
    work = work_dir(job_dir)
    return job_dir if not work.exists() and (job_dir / CHECKPOINTS).exists() else work


def checkpoint_dir(home: Path) -> Path:
    return home / CHECKPOINTS


def progress_file(home: Path) -> Path:
    return home / PROGRESS


def contract_env(home: Path, grace_s: float) -> dict[str, str]:
    """The variables every attempt of the job whose own directory is `home` gets
    (docs/recipes.md)."""
    return {
        CHECKPOINT_DIR_ENV: str(checkpoint_dir(home)),
        PROGRESS_FILE_ENV: str(progress_file(home)),
        GRACE_ENV: f"{grace_s:g}",
    }
