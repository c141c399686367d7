"""Metering one attempt: devices held × wall time, in milliseconds; energy measured by NVML
when the executor read it, else modelled from board power and marked so."""

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
    assert (got.gpu_ms, got.cpu_ms) == (600_000, 2_400_000)
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
    assert (got.gpu_ms, got.cpu_ms, got.energy_j) == (0, 0, 0.0)


def test_cpu_only_work_has_no_gpu_energy_even_with_a_reading() -> None:
    got = meter(
        gpus=0, cpus=2, gpu_model=None, started_at=0, ended_at=5, observed={"gpu_energy_j": 9.0}
    )
    assert (got.gpu_ms, got.cpu_ms, got.energy_j, got.energy_measured) == (0, 10_000, 0.0, False)


@pytest.mark.parametrize(
    ("started", "ended", "gpu_ms"),
    [
        (100.0, 100.4, 1_600),  # 0.4 s on 4 GPUs: once rounded to 2 GPU-s, now to nothing
        (100.0, 100.6, 2_400),
        (1_700_000_000.123, 1_700_000_000.9, 3_108),  # the clock's float, to the millisecond
        (100.0, 100.0004, 0),  # under half a millisecond: the clock's noise
    ],
)
def test_a_sub_second_attempt_is_metered_to_the_millisecond(
    started: float, ended: float, gpu_ms: int
) -> None:
    got = meter(gpus=4, cpus=2, gpu_model="h100", started_at=started, ended_at=ended, observed={})
    assert (got.gpu_ms, got.cpu_ms) == (gpu_ms, gpu_ms // 2)  # GPUs × wall ms, exactly
