"""What a run is given: its specification (kind, configuration, seed, device) and its
environment (datasets, checkpoint folder, progress file, attempt, ranks), and how it is told to
stop.

`environment()` is the one place that reads `os.environ`; everything below takes a `JobEnv`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from aifactory.recipes.dutch_gpt.config import RecipeConfig

SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data"
BOOKS_VAR = "AIFACTORY_DATASET_DUTCH_BOOKS"
EVAL_VAR = "AIFACTORY_DATASET_DUTCH_EVAL"


@dataclass(frozen=True)
class RunSpec:
    kind: str  # "pretrain" or "finetune"
    config: RecipeConfig
    seed: int
    init_from: Path | None = None  # finetune: the checkpoint (file or folder) to start from
    device: str = "cpu"
    compile: bool = False


@dataclass(frozen=True)
class JobEnv:
    books: Path
    eval_set: Path
    checkpoint_dir: Path
    progress_file: Path | None = None
    attempt: int = 1
    grace_s: float | None = None
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1


def environment(
    env: Mapping[str, str],
    *,
    data: Path | None = None,
    checkpoint_dir: Path | None = None,
    progress: Path | None = None,
) -> JobEnv:
    """The facility's variables first; the command line's paths where a variable is unset."""
    data = data or SHIPPED_DATA
    grace = env.get("AIFACTORY_GRACE_S")
    return JobEnv(
        books=Path(env.get(BOOKS_VAR) or data / "dutch-books"),
        eval_set=Path(env.get(EVAL_VAR) or data / "dutch-eval"),
        checkpoint_dir=Path(
            env.get("AIFACTORY_CHECKPOINT_DIR") or checkpoint_dir or "dutch_gpt-checkpoints"
        ),
        progress_file=_path_or_none(env.get("AIFACTORY_PROGRESS_FILE")) or progress,
        attempt=int(env.get("AIFACTORY_ATTEMPT", "1")),
        grace_s=float(grace) if grace else None,
        rank=int(env.get("RANK", "0")),
        local_rank=int(env.get("LOCAL_RANK", "0")),
        world_size=int(env.get("WORLD_SIZE", "1")),
    )


def _path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None


class StopFlag:
    """Set by SIGTERM (or by a test); the loop checks it after every step. The handler only
    sets the flag: all the work happens in the loop, between steps."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)

    def __bool__(self) -> bool:
        return self.reason is not None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def process_env() -> Mapping[str, str]:
    return os.environ
