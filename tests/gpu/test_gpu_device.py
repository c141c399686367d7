"""Checks that need a real NVIDIA GPU: run on the GPU machine with `pytest -m gpu tests/gpu`.

CI has no GPU, so these are deselected there (`-m "not gpu"` in pytest's addopts); the code
paths they prove have CPU-testable seams tested in tests/executors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.executors.local import gpus
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.gpu

TORCH_JOB = """
import os, time, torch
print("visible", os.environ["CUDA_VISIBLE_DEVICES"])
print("devices", torch.cuda.device_count())
if torch.cuda.device_count():
    print("name", torch.cuda.get_device_name(0))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.time() + 4
    n = 0
    while time.time() < end:
        (a @ a).sum().item()
        n += 1
    print("matmuls", n)
"""


@pytest.fixture
def facility(tmp_path: Path) -> Iterator[FacilityProcess]:
    data = tmp_path / "data"
    data.mkdir()
    process = FacilityProcess(data, f"sqlite:///{data / 'af.db'}", virtual_gpus=None, cpus=8)
    yield process
    process.stop()
    process.kill_leftover_jobs()


def test_nvml_finds_every_gpu_with_its_model(tmp_path: Path) -> None:
    found = gpus.discover()
    assert found, "NVML found no GPU"
    assert all(g.uuid.startswith("GPU-") for g in found)
    (offer,) = LocalExecutor(LocalConfig(jobs_dir=tmp_path)).inventory()
    assert offer.node.capacity.gpus == len(found)
    assert offer.gpu_ids == [g.uuid for g in found]
    assert offer.node.gpu_model == found[0].model
    assert offer.node.gpu_model


def test_a_pytorch_job_gets_exactly_its_gpu_and_is_metered(facility: FacilityProcess) -> None:
    facility.start()
    with facility.client() as api:
        node = api.facility()["nodes"][0]
        assert node["gpus"] >= 1
        gpu_job = api.submit(["python3", "-c", TORCH_JOB], gpus=1, name="torch-gpu")["id"]
        cpu_job = api.submit(["python3", "-c", TORCH_JOB], gpus=0, name="torch-cpu")["id"]
        done = api.wait(gpu_job, timeout_s=180)
        cpu_done = api.wait(cpu_job, timeout_s=180)
        gpu_log = api.logs(gpu_job)["text"]
        cpu_log = api.logs(cpu_job)["text"]
    print(gpu_log, cpu_log, sep="\n")
    assert done["state"] == "SUCCEEDED", gpu_log
    assert cpu_done["state"] == "SUCCEEDED", cpu_log
    (part,) = done["placement"].values()
    assert f"visible {part['gpu_ids'][0]}" in gpu_log
    assert "devices 1" in gpu_log
    assert "NVIDIA" in gpu_log
    assert "devices 0" in cpu_log  # no GPU asked, none visible
    exit_record = json.loads((facility.data_dir / "jobs" / str(gpu_job) / "exit.json").read_text())
    print("usage", exit_record["usage"])
    assert exit_record["usage"]["gpu_energy_j"] > 0
