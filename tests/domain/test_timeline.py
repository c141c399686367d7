"""A window cut in slices: grouped rows become points at the slices' midpoints."""

from __future__ import annotations

from aifactory.domain.timeline import Window


def test_groups_become_points_in_time_order_and_outside_indexes_are_dropped() -> None:
    window = Window(0.0, 100.0, 4)  # slices of 25 s
    assert window.width == 25.0
    points = window.points([(3, 7.0), (0, 1.0), (4, 9.0), (-1, 9.0)])
    assert points == [(12.5, 1.0), (87.5, 7.0)]  # slices 1 and 2 had no rows: no made-up 0
