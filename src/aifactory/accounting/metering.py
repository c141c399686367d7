"""Metering: what one attempt of a job consumed, from what its executor observed.

GPU- and CPU-seconds are the devices the attempt held (allocated, not utilised: a held GPU is
a GPU no one else could use) times its wall time. Energy is *measured* when the executor read
NVML energy counters for the attempt's GPUs (`gpu_energy_j`), or Slurm's accounting recorded
the energy of the job's allocation (`energy_j`, acct_gather_energy: the nodes', GPUs included),
else *modelled* as the GPUs' board power (TDP) times their GPU-seconds — an upper bound, marked
as modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
class Metered:
    started_at: float
    ended_at: float
    gpus: int
    cpus: int
    gpu_s: int
    cpu_s: int
    energy_j: float
    energy_measured: bool


def meter(
    *,
    gpus: int,
    cpus: int,
    gpu_model: str | None,
    started_at: float | None,
    ended_at: float,
    observed: Mapping[str, float],
) -> Metered:
    """An attempt that never started consumed nothing."""
    start = ended_at if started_at is None else min(started_at, ended_at)
    wall = ended_at - start
    gpu_s, cpu_s = round(gpus * wall), round(cpus * wall)
    measured = observed.get("gpu_energy_j", observed.get("energy_j"))
    if measured is not None and gpus > 0:
        energy, is_measured = float(measured), True
    else:
        energy, is_measured = gpus * wall * power_w(gpu_model), False
    return Metered(start, ended_at, gpus, cpus, gpu_s, cpu_s, energy, is_measured)


def power_w(gpu_model: str | None) -> float:
    return BOARD_POWER_W.get((gpu_model or "").lower(), DEFAULT_POWER_W)
