"""An allocation's burn-down: the GPU-hours left over its window, drawn from its ledger.

Words: an *entry* is a ledger entry's time and signed effect on the balance, `(at, gpu_ms)`
(domain.ledger); a *point* is `(time, GPU-hours left)`. The *burn line* steps at each entry;
the *ideal line* runs straight from the hours awarded at `valid_from` to none at `valid_to`,
the pace that would use the award exactly by its end.

Only awards, adjustments and settlements move the burn line (`BURNING`): a reservation is a
hold that is given back in full when its attempt ends (and the attempt then settled for what it
used), so drawing it would show a dip for every running job instead of what was spent. The
balance a job can still reserve from is on the page beside the chart.

Pure: numbers in, points and SVG out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import hours_of_ms
from aifactory.web import charts

BURNING = frozenset({EntryKind.AWARD, EntryKind.ADJUST, EntryKind.SETTLE})
Point = tuple[float, float]


def running_balance(entries: Iterable[tuple[float, int]]) -> list[Point]:
    """The GPU-hours left just after each entry (oldest first); entries at the same instant
    give one point, so a step never goes back on itself."""
    points: list[Point] = []
    left_ms = 0
    for at, gpu_ms in entries:
        left_ms += gpu_ms
        if points and points[-1][0] == at:
            points[-1] = (at, hours_of_ms(left_ms))
        else:
            points.append((at, hours_of_ms(left_ms)))
    return points


def as_steps(points: Sequence[Point], *, until: float | None = None) -> list[Point]:
    """Each balance held until the next point (a step line out of straight segments), the last
    one held on to `until` (now, or the window's end) when that is later."""
    steps: list[Point] = []
    for at, left in points:
        if steps:
            steps.append((at, steps[-1][1]))
        steps.append((at, left))
    if steps and until is not None and until > steps[-1][0]:
        steps.append((until, steps[-1][1]))
    return steps


def ideal_line(awarded_h: float, valid_from: float, valid_to: float) -> list[Point]:
    return [(valid_from, awarded_h), (valid_to, 0.0)]


def burndown_chart(
    points: Sequence[Point],
    *,
    awarded_h: float,
    valid_from: float,
    valid_to: float,
    now: float,
    title: str,
) -> charts.Svg:
    """The burn line (series 0) over the ideal line (series 1), across the whole window."""
    if not points:
        return charts.empty(title, "no ledger entries yet")
    burned = charts.Series("GPU-hours left", as_steps(points, until=min(now, valid_to)))
    ideal = charts.Series("ideal pace", ideal_line(awarded_h, valid_from, valid_to))
    return charts.line_chart([burned, ideal], title=title, unit=" h")
