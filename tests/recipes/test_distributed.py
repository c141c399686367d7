"""Two processes under torchrun (gloo on the CPU): one progress stream, one set of checkpoints,
twice the tokens per step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aifactory.recipes.dutch_gpt import checkpoint, progress


def test_torchrun_with_two_processes_trains_one_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")} | {
        "AIFACTORY_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "AIFACTORY_PROGRESS_FILE": str(tmp_path / "progress.jsonl"),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "tiny", "--steps", "20",
        "--checkpoint-every", "10", "--eval-every", "20", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, check=False, timeout=100)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    records = progress.read(tmp_path / "progress.jsonl")
    assert [r["event"] for r in records].count("start") == 1  # rank 0 writes, alone
    assert records[0]["world_size"] == 2
    assert records[0]["tokens_per_step"] == 2 * 16 * 64
    assert records[-1]["event"] == "done"
    assert records[-1]["tokens"] == 20 * 2 * 16 * 64
    assert [p.name for p in checkpoint.saved(tmp_path / "checkpoints")] == [
        "step-00000010.pt",
        "step-00000020.pt",
    ]
