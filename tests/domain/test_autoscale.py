"""The autoscaler's rules (domain.autoscale): load by Little's law within [min, max], idle
endpoints to zero, one replica drained at a time, steady replicas up to min, failing ones not
restarted forever."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.autoscale import (
    DRAIN_S,
    MAX_FAILURES,
    Bounds,
    Load,
    ReplicaNow,
    Scaling,
    scale,
    wanted_replicas,
)

NOW = 10_000.0
B = Bounds(min_replicas=1, max_replicas=4, concurrency=2, idle_timeout_s=600)


def load(busy_s: float = 0.0, *, last: float | None = None, wanted: float | None = None) -> Load:
    return Load(((busy_s, 60.0), (0.0, 600.0)), last, wanted)


def running(*ids: int, preemptible: bool = False) -> list[ReplicaNow]:
    return [ReplicaNow(i, True, preemptible) for i in ids]


def test_load_asks_for_replicas_by_requests_in_flight_within_bounds() -> None:
    assert wanted_replicas(B, load(0), NOW) == 1  # min
    assert wanted_replicas(B, load(60 * 2), NOW) == 1  # 2 in flight: one replica of 2
    assert wanted_replicas(B, load(60 * 2.5), NOW) == 2
    assert wanted_replicas(B, load(60 * 100), NOW) == 4  # max


def test_the_long_window_keeps_replicas_until_it_was_quiet_throughout() -> None:
    quiet_now = Load(((0.0, 60.0), (600 * 5.0, 600.0)), NOW - 61, None)
    assert wanted_replicas(B, quiet_now, NOW) == 3  # 5 in flight over ten minutes


def test_an_endpoint_with_min_zero_sleeps_when_idle_and_wakes_on_demand() -> None:
    zero = Bounds(0, 2, 4, idle_timeout_s=300)
    assert wanted_replicas(zero, load(0), NOW) == 0
    assert wanted_replicas(zero, load(0, last=NOW - 299), NOW) == 1
    assert wanted_replicas(zero, load(0, last=NOW - 301), NOW) == 0
    assert wanted_replicas(zero, load(0, wanted=NOW - 1), NOW) == 1  # a cold start


def test_new_replicas_are_steady_up_to_min_and_preemptible_above() -> None:
    two = Bounds(2, 4, 1, 600)
    decided = scale(two, [], load(60 * 3), NOW)
    assert decided == Scaling(3, start=(False, False, True))
    healed = scale(two, running(7, preemptible=True), load(0), NOW)  # a steady one died
    assert healed.start == (False,)


def test_scaling_down_drains_one_newest_preemptible_replica_then_stops_it() -> None:
    live = [*running(1), *running(5, 6, preemptible=True)]
    first = scale(B, live, load(0), NOW)
    assert first == Scaling(1, drain=(6,))
    drained = [live[0], live[1], ReplicaNow(6, True, True, NOW)]
    assert scale(B, drained, load(0), NOW + 1).stop == ()  # still draining
    later = scale(B, drained, load(0), NOW + DRAIN_S)
    assert later.stop == (6,)
    assert later.drain == (5,)  # and the next


def test_a_replica_that_never_started_is_withdrawn_before_any_is_drained() -> None:
    live = [*running(1, 2, preemptible=True), ReplicaNow(3, False, True)]
    assert scale(B, live, load(0), NOW).stop == (3,)


def test_a_steady_replica_is_drained_only_when_no_preemptible_one_is_left() -> None:
    live = [*running(1), *running(2)]
    assert scale(B, live, load(0), NOW).drain == (2,)


def test_replicas_that_keep_failing_are_not_started_again() -> None:
    failing = Load(((0.0, 60.0),), None, None, failures=MAX_FAILURES)
    decided = scale(B, [], failing, NOW)
    assert decided.start == ()
    assert decided.trouble is not None
    assert "failed" in decided.trouble


@given(
    lo=st.integers(0, 4),
    span=st.integers(0, 4),
    concurrency=st.integers(1, 8),
    busy=st.floats(0, 10_000),
    live=st.lists(st.tuples(st.booleans(), st.booleans()), max_size=10),
)
def test_it_never_leaves_the_bounds_nor_drains_more_than_one(
    lo: int, span: int, concurrency: int, busy: float, live: list[tuple[bool, bool]]
) -> None:
    bounds = Bounds(lo, max(lo, 1) + span, concurrency, 600)
    replicas = [ReplicaNow(i, started, pre) for i, (started, pre) in enumerate(live)]
    decided = scale(bounds, replicas, load(busy), NOW)
    assert bounds.min_replicas <= decided.wanted <= bounds.max_replicas
    after = len(replicas) + len(decided.start) - len(decided.drain) - len(decided.stop)
    if len(replicas) <= decided.wanted:
        assert after == decided.wanted
        assert not decided.drain
        assert not decided.stop
    else:
        assert len(decided.drain) + len(decided.stop) == 1
        assert not decided.start
    steady = sum(1 for r in replicas if not r.preemptible) + decided.start.count(False)
    assert decided.start.count(False) == 0 or steady <= bounds.min_replicas


def test_a_replica_near_its_time_limit_gets_a_successor_before_it_is_drained() -> None:
    rotating = Bounds(1, 2, 2, 600, rotate_s=600)
    old = ReplicaNow(1, True, False, ends_at=NOW + 300)  # 5 minutes left of its limit
    first = scale(rotating, [old], load(0), NOW)
    assert first.start == (False,)  # its successor, steady as it is
    assert first.drain == ()  # it serves on meanwhile
    waiting = [old, ReplicaNow(2, False, False)]
    assert scale(rotating, waiting, load(0), NOW + 10) == Scaling(1)  # until the new one runs
    running_both = [old, ReplicaNow(2, True, False, ends_at=NOW + 86_400)]
    assert scale(rotating, running_both, load(0), NOW + 20).drain == (1,)


def test_a_replica_far_from_its_limit_is_not_rotated() -> None:
    rotating = Bounds(1, 2, 2, 600, rotate_s=600)
    young = ReplicaNow(1, True, False, ends_at=NOW + 601)
    assert scale(rotating, [young], load(0), NOW) == Scaling(1)
