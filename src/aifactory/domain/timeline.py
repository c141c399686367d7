"""Series over time from intervals: how much was busy (or waiting) in each slice of a window.

Pure: the dashboard's queries give intervals, these give the points its charts draw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float | None  # None: still going
    weight: float = 1.0  # GPUs held, or 1 for a job waiting


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float
    slices: int

    @property
    def width(self) -> float:
        return (self.end - self.start) / self.slices

    def midpoints(self) -> list[float]:
        return [self.start + (i + 0.5) * self.width for i in range(self.slices)]

    def index(self, t: float) -> int | None:
        if not self.start <= t < self.end:
            return None
        return min(int((t - self.start) / self.width), self.slices - 1)


def time_weighted(intervals: Iterable[Interval], window: Window) -> list[tuple[float, float]]:
    """The mean of the summed weights over each slice (GPUs busy on average, jobs waiting on
    average); an interval counts in proportion to the part of a slice it covers."""
    totals = [0.0] * window.slices
    width = window.width
    for interval in intervals:
        start = max(interval.start, window.start)
        end = min(interval.end if interval.end is not None else window.end, window.end)
        if end <= start:
            continue
        first = int((start - window.start) / width)
        last = min(int((end - window.start) / width), window.slices - 1)
        for i in range(first, last + 1):
            lo = window.start + i * width
            overlap = min(end, lo + width) - max(start, lo)
            if overlap > 0:
                totals[i] += interval.weight * overlap / width
    return list(zip(window.midpoints(), totals, strict=True))


def mean_per_slice(
    samples: Iterable[tuple[float, float]], window: Window
) -> list[tuple[float, float]]:
    """The mean of the values that fall in each slice (slices with none are left out)."""
    sums = [0.0] * window.slices
    counts = [0] * window.slices
    for at, value in samples:
        i = window.index(at)
        if i is not None:
            sums[i] += value
            counts[i] += 1
    mids = window.midpoints()
    return [(mids[i], sums[i] / counts[i]) for i in range(window.slices) if counts[i]]


def sum_per_slice(
    samples: Iterable[tuple[float, float]], window: Window
) -> list[tuple[float, float]]:
    sums = [0.0] * window.slices
    for at, value in samples:
        i = window.index(at)
        if i is not None:
            sums[i] += value
    return list(zip(window.midpoints(), sums, strict=True))
