"""Metering one attempt: devices held × wall time; energy measured by NVML when the executor
read it, else modelled from board power and marked so."""

from __future__ import annotations

import pytest

from aifactory.accounting.metering import DEFAULT_POWER_W, meter


def test_energy_read_from_nvml_counters_is_measured() -> None:
    got = meter(
        gpus=2,
        cpus=8,
        gpu_model="h100",
        started_at=100.0,
        ended_at=400.0,
        observed={"wall_s": 300.0, "gpu_energy_j": 123_456.0},
    )
    assert (got.gpu_s, got.cpu_s) == (600, 2400)
    assert (got.energy_j, got.energy_measured) == (123_456.0, True)


def test_energy_slurm_recorded_for_the_allocation_is_measured() -> None:
    common = {"gpus": 4, "cpus": 8, "gpu_model": "h100", "started_at": 0.0, "ended_at": 60.0}
    from_slurm = meter(**common, observed={"energy_j": 150_000.0})
    assert (from_slurm.energy_j, from_slurm.energy_measured) == (150_000.0, True)
    both = meter(**common, observed={"energy_j": 150_000.0, "gpu_energy_j": 90_000.0})
    assert both.energy_j == 90_000.0  # the GPUs' own counters, where read, come first


def test_without_a_reading_energy_is_modelled_from_board_power() -> None:
    got = meter(
        gpus=4, cpus=1, gpu_model="A100", started_at=0.0, ended_at=10.0, observed={"wall_s": 10}
    )
    assert got.energy_j == pytest.approx(4 * 10 * 400.0)
    assert got.energy_measured is False


def test_an_unknown_or_virtual_gpu_uses_the_default_power() -> None:
    got = meter(gpus=1, cpus=1, gpu_model=None, started_at=0.0, ended_at=1.0, observed={})
    assert got.energy_j == pytest.approx(DEFAULT_POWER_W)


def test_an_attempt_that_never_started_used_nothing() -> None:
    got = meter(gpus=8, cpus=8, gpu_model="h100", started_at=None, ended_at=50.0, observed={})
    assert (got.gpu_s, got.cpu_s, got.energy_j) == (0, 0, 0.0)


def test_cpu_only_work_has_no_gpu_energy_even_with_a_reading() -> None:
    got = meter(
        gpus=0, cpus=2, gpu_model=None, started_at=0, ended_at=5, observed={"gpu_energy_j": 9.0}
    )
    assert (got.gpu_s, got.cpu_s, got.energy_j, got.energy_measured) == (0, 10, 0.0, False)
