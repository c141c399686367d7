"""The GPU sampling of an attempt through real NVML (executors.local.sampling, gpus.reader):
run on the GPU machine with `pytest -m gpu tests/gpu`. CI has no GPU: the same code is tested
there through its seams (tests/executors/test_local_sampling.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.executors.base import Outcome
from aifactory.executors.local import gpus
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from tests.executors.conftest import cleanup_jobs
from tests.executors.jobs import launch, run_to_exit
from tests.gpu.test_gpu_device import TORCH_JOB

pytestmark = pytest.mark.gpu


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    """The local executor on this machine's real GPUs (found through NVML)."""
    made = LocalExecutor(LocalConfig(jobs_dir=tmp_path / "jobs", cpus=4, grace_s=1.0))
    yield made
    cleanup_jobs(tmp_path / "jobs")
    made.poll([])  # reaps its exited supervisors


def test_nvml_reads_a_real_gpu() -> None:
    (first, *_) = gpus.discover()
    reader = gpus.reader([first.uuid])
    try:
        (reading,) = reader.read()
    finally:
        reader.close()
    assert 0 <= reading.utilisation_pct <= 100
    assert 0 < reading.memory_used_mb <= first.memory_mb


def test_a_busy_gpu_job_reports_its_utilisation_and_memory(executor: LocalExecutor) -> None:
    (first, *_) = gpus.discover()
    job = launch(1, ["python3", "-c", TORCH_JOB], gpu_ids=[first.uuid], memory_mb=16_000)
    done = run_to_exit(executor, job, timeout_s=180)
    assert done.outcome is Outcome.SUCCEEDED, executor.log_path(1).read_text()
    print("usage", done.usage)
    assert done.usage["gpu_utilisation_pct"] >= 30  # 4 s of bf16 matmuls, after CUDA's start
    assert done.usage["peak_gpu_memory_mb"] >= 128  # 8192² bf16 is 128 MB, and CUDA's context
    assert done.usage["gpu_samples"] >= 4
