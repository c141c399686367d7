"""Series from intervals: time-weighted means per slice, and means/sums of samples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.timeline import (
    Interval,
    Window,
    mean_per_slice,
    sum_per_slice,
    time_weighted,
)

WINDOW = Window(0.0, 100.0, 4)  # slices of 25 s


def test_an_interval_counts_in_proportion_to_the_part_of_each_slice_it_covers() -> None:
    series = time_weighted([Interval(10.0, 60.0, 2.0)], WINDOW)
    assert [t for t, _ in series] == [12.5, 37.5, 62.5, 87.5]
    assert [v for _, v in series] == pytest.approx([2 * 15 / 25, 2.0, 2 * 10 / 25, 0.0])


def test_an_open_interval_lasts_to_the_end_and_one_before_the_window_is_clipped() -> None:
    series = time_weighted([Interval(-50.0, None, 1.0), Interval(-10.0, -1.0, 5.0)], WINDOW)
    assert [v for _, v in series] == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_samples_are_averaged_or_summed_per_slice_and_empty_slices_left_out() -> None:
    samples = [(1.0, 4.0), (2.0, 6.0), (80.0, 1.0), (100.0, 9.0), (-1.0, 9.0)]
    assert mean_per_slice(samples, WINDOW) == [(12.5, 5.0), (87.5, 1.0)]
    assert [v for _, v in sum_per_slice(samples, WINDOW)] == [10.0, 0.0, 0.0, 1.0]


@given(
    st.lists(
        st.tuples(
            st.floats(-200, 200), st.floats(0, 300), st.floats(0, 8, allow_subnormal=False)
        ),
        max_size=20,
    )
)
def test_the_series_keeps_the_busy_time_inside_the_window(
    spans: list[tuple[float, float, float]],
) -> None:
    """Sum over slices of mean × width = the weighted time the intervals spend in the window."""
    intervals = [Interval(start, start + length, weight) for start, length, weight in spans]
    series = time_weighted(intervals, WINDOW)
    inside = sum(
        i.weight * max(0.0, min(i.end or 100.0, 100.0) - max(i.start, 0.0)) for i in intervals
    )
    assert sum(v * WINDOW.width for _, v in series) == pytest.approx(inside, abs=1e-6)
