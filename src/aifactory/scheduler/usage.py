"""Decayed usage: GPU-seconds that fade with a half-life, as Slurm's fair-share counts them.

Usage accrues while a job runs (not only when it ends) and every past GPU-second loses half its
weight per half-life (Slurm's `PriorityDecayHalfLife`, 7 days by default). Two ways to get it:
`DecayedUsage` advances a running tally event by event (the simulator); `usage_at` recomputes
it from job intervals (the live facility, which reads them from its database). Both are exact
for piecewise-constant use: a job holding g GPUs over [a, b] adds
g · ∫ₐᵇ 2^(−(now−s)/H) ds = g · H/ln 2 · (2^(−(now−b)/H) − 2^(−(now−a)/H)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

WEEK_S = 7 * 86400.0


def decay(value: float, elapsed_s: float, half_life_s: float) -> float:
    return value * math.pow(2.0, -elapsed_s / half_life_s)


def accrued(gpus: float, elapsed_s: float, half_life_s: float) -> float:
    """Decayed GPU-seconds that `gpus` held for the last `elapsed_s` seconds are worth now."""
    return gpus * half_life_s / math.log(2) * (1.0 - math.pow(2.0, -elapsed_s / half_life_s))


@dataclass
class DecayedUsage:
    """A per-project tally, advanced from one instant to the next with the GPUs held between."""

    half_life_s: float = WEEK_S
    at: float | None = None
    usage: dict[str, float] = field(default_factory=dict)

    def advance(self, now: float, holding: Mapping[str, int]) -> None:
        """`holding`: GPUs each project held, unchanged, since the last call."""
        if self.at is not None and now > self.at:
            elapsed = now - self.at
            factor = math.pow(2.0, -elapsed / self.half_life_s)
            for project in self.usage:
                self.usage[project] *= factor
            for project, gpus in holding.items():
                if gpus:
                    gained = accrued(gpus, elapsed, self.half_life_s)
                    self.usage[project] = self.usage.get(project, 0.0) + gained
        self.at = now if self.at is None else max(self.at, now)


@dataclass(frozen=True, slots=True)
class Interval:
    project: str
    gpus: int
    start: float
    end: float | None  # None: still running


def usage_at(intervals: Iterable[Interval], now: float, half_life_s: float) -> dict[str, float]:
    usage: dict[str, float] = {}
    scale = half_life_s / math.log(2)
    for run in intervals:
        end = now if run.end is None else min(run.end, now)
        if end <= run.start or not run.gpus:
            continue
        worth = (
            run.gpus
            * scale
            * (
                math.pow(2.0, -(now - end) / half_life_s)
                - math.pow(2.0, -(now - run.start) / half_life_s)
            )
        )
        usage[run.project] = usage.get(run.project, 0.0) + worth
    return usage
