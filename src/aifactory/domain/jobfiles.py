"""What the facility keeps for a job across its attempts, and tells the job about it.

Every job has a home, `<jobs dir>/<job id>/`, shared by its attempts and removed with the job's
data (project closure; see docs/recipes.md). In it the facility keeps, for the job's own use:
- `checkpoints/`    the job's checkpoint directory: made before the first attempt starts, the
                    same for every attempt, never emptied on a requeue;
- `progress.jsonl`  the progress channel: the job appends one JSON object per line
                    (domain.progress reads them).

The job learns both, and the grace period it gets between SIGTERM and SIGKILL, from its
environment (`contract_env`). Pure: paths in, paths and strings out.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = "checkpoints"
PROGRESS = "progress.jsonl"
CHECKPOINT_DIR_ENV = "AIFACTORY_CHECKPOINT_DIR"
PROGRESS_FILE_ENV = "AIFACTORY_PROGRESS_FILE"
GRACE_ENV = "AIFACTORY_GRACE_S"


def checkpoint_dir(home: Path) -> Path:
    return home / CHECKPOINTS


def progress_file(home: Path) -> Path:
    return home / PROGRESS


def contract_env(home: Path, grace_s: float) -> dict[str, str]:
    """The variables every attempt of the job whose home is `home` gets (docs/recipes.md)."""
    return {
        CHECKPOINT_DIR_ENV: str(checkpoint_dir(home)),
        PROGRESS_FILE_ENV: str(progress_file(home)),
        GRACE_ENV: f"{grace_s:g}",
    }
