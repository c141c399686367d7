"""A window of time cut in equal slices: what the dashboard's series are drawn over.

Pure: the queries group rows by `slice` index (store.sql.floor_div over `start` and `width`),
these turn the groups into the points a chart draws.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float
    slices: int

    @property
    def width(self) -> float:
        return (self.end - self.start) / self.slices

    def midpoint(self, index: int) -> float:
        return self.start + (index + 0.5) * self.width

    def points(self, groups: Iterable[tuple[int, float]]) -> list[tuple[float, float]]:
        """(slice index, value) → (midpoint, value), in time order; indexes outside the window
        (a row at its very end) are dropped, and empty slices stay empty (no made-up zero)."""
        inside = sorted((i, v) for i, v in groups if 0 <= i < self.slices)
        return [(self.midpoint(i), v) for i, v in inside]
