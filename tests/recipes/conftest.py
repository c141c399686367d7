"""Fixtures for the dutch_gpt recipe: one CPU thread (fast and bit-reproducible on a small
machine), a short tiny configuration, and one reference run shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from aifactory.recipes.dutch_gpt import progress
from aifactory.recipes.dutch_gpt.config import CONFIGS, RecipeConfig
from aifactory.recipes.dutch_gpt.run import JobEnv, RunSpec, StopFlag, environment
from aifactory.recipes.dutch_gpt.train import Result, train

SEED = 7
STEPS = 60
CHECKPOINT_EVERY = 20


def short_tiny() -> RecipeConfig:
    return CONFIGS["tiny"].with_overrides(
        steps=STEPS, checkpoint_every=CHECKPOINT_EVERY, eval_every=30, log_every=10
    )


def job_env(root: Path, *, attempt: int = 1) -> JobEnv:
    return environment(
        {"AIFACTORY_ATTEMPT": str(attempt)},
        checkpoint_dir=root / "checkpoints",
        progress=root / "progress.jsonl",
    )


def pretrain_spec() -> RunSpec:
    return RunSpec("pretrain", short_tiny(), SEED)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Reference:
    """An unpreempted tiny pretraining run: its folder, result and progress records."""

    root: Path
    result: Result
    records: list[dict[str, Any]]


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(pretrain_spec(), job_env(root), StopFlag())
    finally:
        torch.set_num_threads(before)
    return Reference(root, result, progress.read(root / "progress.jsonl"))
