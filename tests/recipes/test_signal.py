"""The recipe as the facility runs it: a process that gets SIGTERM mid-run, checkpoints, exits
with 143, and is started again with the same command and checkpoint folder (attempt 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aifactory.recipes.dutch_gpt import EXIT_PREEMPTED, progress
from tests.recipes.conftest import CHECKPOINT_EVERY, SEED, STEPS, Reference

COMMAND = [
    sys.executable, "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "tiny",
    "--seed", str(SEED), "--steps", str(STEPS), "--checkpoint-every", str(CHECKPOINT_EVERY),
    "--eval-every", "30", "--log-every", "1", "--device", "cpu",
]  # fmt: skip


def job_env(root: Path, attempt: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    return env | {
        "AIFACTORY_JOB_ID": "j1",
        "AIFACTORY_ATTEMPT": str(attempt),
        "AIFACTORY_CHECKPOINT_DIR": str(root / "checkpoints"),
        "AIFACTORY_PROGRESS_FILE": str(root / "progress.jsonl"),
        "AIFACTORY_GRACE_S": "10",
        "OMP_NUM_THREADS": "1",  # as the in-process reference: bit-identical results
    }


def wait_for_step(path: Path, step: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and any(
            r["event"] == "train" and r["step"] >= step for r in progress.read(path)
        ):
            return
        assert proc.poll() is None, "the run ended before it could be signalled"
        time.sleep(0.01)
    raise AssertionError(f"no train report for step {step} within 60 s")


def test_sigterm_checkpoints_exits_143_and_the_next_attempt_finishes_the_run(
    tmp_path: Path, reference: Reference
) -> None:
    file = tmp_path / "progress.jsonl"
    with subprocess.Popen(COMMAND, env=job_env(tmp_path, 1), stderr=subprocess.PIPE) as proc:
        wait_for_step(file, 3, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_PREEMPTED, stderr.decode()
    first = progress.read(file)
    last_trained = max(r["step"] for r in first if r["event"] == "train")
    assert first[-1]["event"] == "checkpoint"
    assert first[-1]["reason"] == "signal"
    assert first[-1]["step"] == last_trained < STEPS  # the work lost: none
    assert Path(first[-1]["path"]).exists()

    second = subprocess.run(COMMAND, env=job_env(tmp_path, 2), capture_output=True, check=False)
    assert second.returncode == 0, second.stderr.decode()
    records = progress.read(file)[len(first) :]
    assert records[1] == records[1] | {"event": "resume", "step": last_trained, "attempt": 2}
    assert records[-1]["event"] == "done"
    assert abs(records[-1]["loss"] - reference.result.loss) <= 1e-6
