from __future__ import annotations

import pytest

from aifactory.sim.engine import Sample
from aifactory.sim.metrics import jain, jain_fairness, percentile, water_fill


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([], 50) == 0.0


def test_water_fill_gives_nobody_more_than_it_asks() -> None:
    assert water_fill(10, {"a": 2, "b": 8, "c": 8}) == {"a": 2, "b": 4, "c": 4}
    assert water_fill(10, {"a": 3, "b": 3}) == {"a": 3, "b": 3}
    assert water_fill(9, {"a": 9, "b": 9, "c": 0}) == {"a": 4.5, "b": 4.5, "c": 0}


def test_jain_index() -> None:
    assert jain([1, 1, 1]) == 1.0
    assert jain([1, 0]) == 0.5


def test_fairness_counts_only_contended_instants() -> None:
    calm = Sample(0, running={"a": 8}, waiting={})
    fair = Sample(1, running={"a": 4, "b": 4}, waiting={"a": 4, "b": 4})
    skewed = Sample(2, running={"a": 8}, waiting={"b": 8})
    assert jain_fairness([calm], 8) == 1.0
    assert jain_fairness([calm, fair], 8) == 1.0
    assert jain_fairness([fair, skewed], 8) == pytest.approx((1.0 + 0.5) / 2)
