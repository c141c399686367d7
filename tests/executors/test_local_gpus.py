"""GPU model names and NVML discovery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aifactory.executors.local import gpus


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("Tesla V100-SXM2-16GB", "v100"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA", "unknown"),
        ("", "unknown"),
    ],
)
def test_gpu_model_slug(name: str, slug: str) -> None:
    assert gpus.gpu_model_slug(name) == slug


def test_gpu_model_comes_from_its_name() -> None:
    gpu = gpus.Gpu(index=0, uuid="GPU-1234", name="NVIDIA H100 80GB HBM3", memory_mb=81559)

    assert gpu.model == "h100"


def test_discover_without_an_nvidia_driver_finds_no_gpus() -> None:
    found = gpus.discover()  # must never raise, driver or not

    assert isinstance(found, list)
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidiactl").exists():
        assert found == []
    for gpu in found:
        assert gpu.uuid
        assert gpu.model != "unknown"


def test_energy_readings_without_gpus_are_empty() -> None:
    assert gpus.energy_mj([]) == {}
    assert gpus.energy_mj(["GPU-00000000-0000-0000-0000-000000000000"]) == {}
