from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aifactory.recipes.dutch_gpt import checkpoint
from aifactory.recipes.dutch_gpt.config import CONFIGS
from aifactory.recipes.dutch_gpt.data import batch_at
from aifactory.recipes.dutch_gpt.model import loss_of
from aifactory.recipes.dutch_gpt.run import RunSpec
from aifactory.recipes.dutch_gpt.setup import Start, build, state_of
from tests.recipes.conftest import job_env


def test_saving_keeps_the_newest_two_complete_files(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        checkpoint.save(tmp_path, step, {"step": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000020.pt", "step-00000030.pt"]
    assert checkpoint.latest(tmp_path) == {"step": 30}


def test_a_torn_newest_file_falls_back_to_the_one_before(tmp_path: Path) -> None:
    checkpoint.save(tmp_path, 10, {"step": 10})
    checkpoint.path_for(tmp_path, 20).write_bytes(b"torn")
    assert checkpoint.latest(tmp_path) == {"step": 10}
    assert checkpoint.latest(tmp_path / "missing") is None


def test_from_names_a_file_or_a_folder(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path, 5, {"step": 5})
    assert checkpoint.resolve(path) == checkpoint.resolve(tmp_path) == {"step": 5}
    with pytest.raises(FileNotFoundError):
        checkpoint.resolve(tmp_path / "empty")


def next_loss(run: Start, step: int) -> float:
    x, y = batch_at(
        torch.arange(256, dtype=torch.uint8).repeat(8),
        seed=run.seed,
        step=step,
        rank=0,
        batch_size=4,
        block_size=run.config.model.block_size,
    )
    loss = loss_of(run.model(x), y)
    loss.backward()
    run.optimizer.step()
    run.optimizer.zero_grad()
    return loss_of(run.model(x), y).item()


def test_a_saved_run_takes_the_same_next_step_as_the_original(tmp_path: Path) -> None:
    spec = RunSpec("pretrain", CONFIGS["tiny"], seed=3)
    env = job_env(tmp_path)
    original = build(spec, env, torch.device("cpu"))
    next_loss(original, 0)
    original.step, original.tokens = 1, 99
    checkpoint.save(env.checkpoint_dir, 1, state_of(original))
    restored = build(spec, env, torch.device("cpu"))
    assert restored.resumed
    assert (restored.step, restored.tokens, restored.seed) == (1, 99, 3)
    assert next_loss(restored, 1) == next_loss(original, 1)
