"""Metering keeps what the executor measured of an attempt beside what it held (for its
efficiency report), each figure only as measured: none is made up, none is billed."""

from __future__ import annotations

from aifactory.accounting.metering import Measured, meter


def test_what_was_measured_is_kept_and_what_was_not_is_none() -> None:
    observed = {"wall_s": 10.0, "cpu_time_s": 7.5, "peak_rss_mb": 210.0, "gpu_energy_j": 5.0}
    metered = meter(
        gpus=1,
        cpus=2,
        gpu_model="h100",
        started_at=100.0,
        ended_at=110.0,
        observed=observed,
        memory_mb=4096,
    )
    assert metered.memory_mb == 4096
    assert metered.measured == Measured(cpu_time_s=7.5, peak_rss_mb=210.0)
    assert metered.measured.gpu_utilisation_pct is None
    assert (metered.gpu_ms, metered.cpu_ms) == (10_000, 20_000)  # billed: what it held


def test_gpu_figures_are_kept_as_the_executor_sampled_them() -> None:
    observed = {"gpu_utilisation_pct": 87.5, "peak_gpu_memory_mb": 40_000.0}
    measured = Measured.of(observed)
    assert (measured.gpu_utilisation_pct, measured.peak_gpu_memory_mb) == (87.5, 40_000.0)
    assert (measured.cpu_time_s, measured.peak_rss_mb) == (None, None)
