"""The flagship workload through a real facility (`aifactory up`, local executor, SQLite): the
tiny Dutch GPT recipe, expanded by `aifactory submit --recipe … --dry-run`, reads the shipped
texts through the facility's dataset paths, reports progress, checkpoints — and when the
scheduler reclaims its GPU for a project with a guaranteed quota, it is preempted (SIGTERM,
checkpoint, PREEMPTED → PENDING), resumes as a second attempt from its checkpoint, and ends
with the same loss as an identical run that was never preempted, having lost less than one
checkpoint interval of work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifactory.client import Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow
STEPS, EVERY = 160, 20
GRACE_S = 10.0  # the facility's default SIGTERM → SIGKILL grace
TOLERANCE = 1e-6  # bit-exact on CPU with one thread; the recipe's own tests state the same


@pytest.fixture
def facility(tmp_path: Path) -> Iterator[FacilityProcess]:
    """Two GPUs, so a 2-GPU job of a project with a 2-GPU quota reclaims a borrowed one."""
    running = FacilityProcess(tmp_path, f"sqlite:///{tmp_path / 'aifactory.db'}", virtual_gpus=2)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        running.kill_leftover_jobs()


def cli(facility: FacilityProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        env=facility.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def progress(facility: FacilityProcess, job_id: int) -> list[dict[str, Any]]:
    path = facility.data_dir / "jobs" / str(job_id) / "work" / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def final_loss(records: list[dict[str, Any]]) -> float:
    return float([r for r in records if r["event"] == "train"][-1]["loss"])


def test_a_preempted_training_run_resumes_and_ends_as_if_never_stopped(
    facility: FacilityProcess,
) -> None:
    out = cli(facility, "recipes", "install-data", "--data-dir", str(facility.data_dir),
              "--grant", "default")  # fmt: skip
    assert "dutch-books: registered" in out
    spec = json.loads(
        cli(
            facility,
            "submit",
            "--recipe",
            "dutch-gpt-pretrain",
            "--config",
            "tiny",
            "--python",
            sys.executable,
            "--dry-run",
            "--json",
        )
    )
    assert spec["datasets"] == ["dutch-books", "dutch-eval"]
    assert spec["preemptible"] is True
    assert spec["gpus"] == 0  # tiny runs on a CPU; here it holds a (virtual) GPU to be reclaimed
    spec["gpus"] = 1
    spec["command"] += ["--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--seed", "7"]
    spec["env"] = {**spec.get("env", {}), "OMP_NUM_THREADS": "1"}  # bit-exact across runs
    with facility.client() as api:
        run_preempted_and_not(facility, api, spec)


def run_preempted_and_not(facility: FacilityProcess, api: Client, spec: dict[str, Any]) -> None:
    straight = api.submit(**spec)["id"]
    assert api.wait(straight, timeout_s=300)["state"] == "SUCCEEDED"
    reference = progress(facility, straight)
    first, last = reference[0], reference[-1]
    assert first["event"] == "start"
    losses = [r["loss"] for r in reference if r["event"] == "train"]
    assert losses[-1] < losses[0] - 1.0, "the loss falls"
    assert any(r["event"] == "eval" and r["eval_ppl"] < 256 for r in reference)
    assert last["event"] == "done"
    own = facility.data_dir / "jobs" / str(straight) / "work"  # the job's own directory
    assert list((own / "checkpoints").glob("step-*.pt"))

    _quota_project(api)
    stopped = api.submit(**spec)["id"]
    wait_for(
        lambda: any(r.get("step", 0) >= 2 * EVERY + 5 for r in progress(facility, stopped)),
        "the second run to pass two checkpoints",
    )
    rush = api.submit(["sleep", "2"], gpus=2, project="rush", name="reclaim")["id"]
    assert api.wait(rush, timeout_s=120)["state"] == "SUCCEEDED"
    ended = api.wait(stopped, timeout_s=300)
    assert ended["state"] == "SUCCEEDED"
    assert ended["attempts"] == 2
    states = [e["to_state"] for e in api.job(stopped)["events"]]
    assert "PREEMPTED" in states

    resumed = progress(facility, stopped)
    assert any(r["event"] == "resume" and r["attempt"] == 2 for r in resumed)
    assert final_loss(resumed) == pytest.approx(final_loss(reference), abs=TOLERANCE)
    (cut,) = api.progress(stopped)["preemptions"]
    # Work lost: the steps done after the last checkpoint (the SIGTERM one) — less than one
    # checkpoint interval. GPU-seconds lost count the stop itself too (the exit, the facility
    # seeing it), so they are bounded by the grace period, not by the interval.
    assert cut["lost_steps"] is not None
    assert cut["lost_steps"] < EVERY, cut
    assert 0 <= cut["lost_gpu_s"] < GRACE_S, cut
    shown = cli(facility, "show", str(stopped))
    assert "train" in shown
    assert "lost" in shown


def _quota_project(api: Client) -> None:
    api.create_project("rush", "default", owner="admin")
    now = datetime.now(UTC)
    api.create_allocation(
        project="rush",
        programme="research",
        gpu_hours=10,
        valid_from=now - timedelta(hours=1),
        valid_to=now + timedelta(days=1),
        reason="a guaranteed quota to reclaim with",
        quota_gpus=2,
    )
