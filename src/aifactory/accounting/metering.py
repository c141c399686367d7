"""Metering: what one attempt of a job consumed, from what its executor observed.

GPU- and CPU-milliseconds are the devices the attempt held (allocated, not utilised: a held GPU
is a GPU no one else could use) times its wall time. The wall time is taken to the millisecond
(the ledger's unit, domain.money) here, once; nothing metered is rounded again before an
invoice line, so a sub-second attempt is charged what it ran, not 0 or 1 second.

Energy is *measured* when the executor read NVML energy counters for the attempt's GPUs
(`gpu_energy_j`), or Slurm's accounting recorded the energy of the job's allocation
(`energy_j`, acct_gather_energy: the nodes', GPUs included), else *modelled* as the GPUs' board
power (TDP) times their GPU-seconds — an upper bound, marked as modelled.

What the attempt *used* of what it held (CPU time, peak resident memory, GPU utilisation and
memory, as its executor measured them) is kept beside it (`Measured`) for its efficiency report
(services.efficiency); it is never billed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aifactory.domain.money import ms_of_seconds

# Board power (W) by GPU model slug, from the vendors' data sheets (SXM parts where both exist).
BOARD_POWER_W: dict[str, float] = {
    "h200": 700.0,
    "h100": 700.0,
    "a100": 400.0,
    "l40s": 350.0,
    "l40": 300.0,
    "l4": 72.0,
    "a10": 150.0,
    "v100": 300.0,
    "rtx4090": 450.0,
}
DEFAULT_POWER_W = 300.0  # an unknown or virtual GPU


@dataclass(frozen=True, slots=True)
class Measured:
    """What the executor measured the attempt used; None: not measured (never a zero)."""

    cpu_time_s: float | None = None
    peak_rss_mb: float | None = None
    gpu_utilisation_pct: float | None = None
    peak_gpu_memory_mb: float | None = None

    @classmethod
    def of(cls, observed: Mapping[str, float]) -> Measured:
        return cls(
            cpu_time_s=observed.get("cpu_time_s"),
            peak_rss_mb=observed.get("peak_rss_mb"),
            gpu_utilisation_pct=observed.get("gpu_utilisation_pct"),
            peak_gpu_memory_mb=observed.get("peak_gpu_memory_mb"),
        )


@dataclass(frozen=True, slots=True)
class Metered:
    started_at: float
    ended_at: float
    gpus: int
    cpus: int
    gpu_ms: int
    cpu_ms: int
    energy_j: float
    energy_measured: bool
    memory_mb: int = 0  # held, over all its nodes
    measured: Measured = Measured()


def meter(
    *,
    gpus: int,
    cpus: int,
    gpu_model: str | None,
    started_at: float | None,
    ended_at: float,
    observed: Mapping[str, float],
    memory_mb: int = 0,
) -> Metered:
    """An attempt that never started consumed nothing."""
    start = ended_at if started_at is None else min(started_at, ended_at)
    wall = ended_at - start
    wall_ms = ms_of_seconds(wall)
    measured = observed.get("gpu_energy_j", observed.get("energy_j"))
    if measured is not None and gpus > 0:
        energy, is_measured = float(measured), True
    else:
        energy, is_measured = gpus * wall * power_w(gpu_model), False
    return Metered(
        start,
        ended_at,
        gpus,
        cpus,
        gpus * wall_ms,
        cpus * wall_ms,
        energy,
        is_measured,
        memory_mb,
        Measured.of(observed),
    )


def power_w(gpu_model: str | None) -> float:
    return BOARD_POWER_W.get((gpu_model or "").lower(), DEFAULT_POWER_W)
