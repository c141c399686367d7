"""Checkpoints: one file per saved step, `step-00000100.pt`, in the job's checkpoint folder.

Invariants: a file under its final name is complete (written to a temporary name, fsynced,
renamed with `os.replace`, the folder fsynced); the newest two are kept, so a file lost to a
crash mid-save still leaves the one before. `latest` skips files that do not load.

A checkpoint holds what a resumed run needs to continue as if never stopped: model and optimizer
state, step, tokens seen, the torch RNG state, the configuration, the seed and the run's kind.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

KEEP = 2
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def path_for(folder: Path, step: int) -> Path:
    return folder / f"step-{step:08d}.pt"


def save(folder: Path, step: int, state: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = path_for(folder, step)
    temporary = folder / f".{final.name}.tmp"
    with open(temporary, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)
    _fsync_dir(folder)
    for old in saved(folder)[:-KEEP]:
        old.unlink(missing_ok=True)
    return final


def saved(folder: Path) -> list[Path]:
    """The checkpoint files in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def latest(folder: Path) -> dict[str, Any] | None:
    """The newest checkpoint in `folder` that loads, or None when there is none."""
    for path in reversed(saved(folder)):
        try:
            return load(path)
        except Exception as exc:  # torn or corrupt (unpickling fails many ways)
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
    return None


def resolve(source: Path) -> dict[str, Any]:
    """A checkpoint named by its file, or the newest in a folder (`finetune --from`)."""
    if source.is_file():
        return load(source)
    state = latest(source)
    if state is None:
        raise FileNotFoundError(f"no checkpoint in {source}")
    return state


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
