"""Best-fit placement (`place`, `take`) and the EASY reservation (`reserve`), one at a time."""

from __future__ import annotations

import math

import pytest

from aifactory.domain.resources import Resources
from aifactory.scheduler.backfill import Reservation, reserve
from aifactory.scheduler.decisions import Start
from aifactory.scheduler.placement import place, take
from aifactory.scheduler.snapshot import NodeKind
from tests.scheduler.builders import JobBuilder, a_job, a_node, running, snapshot

R = Resources
H100 = dict.fromkeys(["n1", "n2", "n3"], NodeKind("h100"))

# ---- place -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "job", "expected"),
    [
        pytest.param(
            {"n1": R(8, 64, 8000), "n2": R(2, 64, 8000)},
            a_job(1).gpus(2),
            {"n2": R(2, 1, 1024)},
            id="fewest-free-gpus-first",
        ),
        pytest.param(
            {"n1": R(4, 64, 8000), "n2": R(4, 8, 8000)},
            a_job(1).gpus(2),
            {"n2": R(2, 1, 1024)},
            id="then-fewest-free-cpus",
        ),
        pytest.param(
            {"n1": R(4, 8, 9000), "n2": R(4, 8, 2000)},
            a_job(1).gpus(2),
            {"n2": R(2, 1, 1024)},
            id="then-least-free-memory",
        ),
        pytest.param(
            {"n2": R(4, 8, 2000), "n1": R(4, 8, 2000)},
            a_job(1).gpus(2),
            {"n1": R(2, 1, 1024)},
            id="then-node-id",
        ),
        pytest.param(
            {"n1": R(1, 64, 8000), "n2": R(8, 64, 8000)},
            a_job(1).gpus(2),
            {"n2": R(2, 1, 1024)},
            id="too-small-holes-are-skipped",
        ),
        pytest.param(
            {"n1": R(8, 64, 8000), "n2": R(3, 64, 8000), "n3": R(4, 64, 8000)},
            a_job(1).gpus(3).nodes(2),
            {"n2": R(3, 1, 1024), "n3": R(3, 1, 1024)},
            id="gang-takes-the-tightest-nodes",
        ),
        pytest.param(
            {"n1": R(8, 64, 8000), "n2": R(3, 64, 8000)},
            a_job(1).gpus(4).nodes(2),
            None,
            id="gang-short-of-one-node",
        ),
        pytest.param({}, a_job(1).gpus(0), None, id="no-nodes"),
        pytest.param(
            {"n1": R(8, 0, 8000)},
            a_job(1).gpus(1).cpus(1),
            None,
            id="no-cpu-left",
        ),
    ],
)
def test_place(
    free: dict[str, Resources], job: JobBuilder, expected: dict[str, Resources] | None
) -> None:
    assert place(job.build(), free, H100) == expected


def test_place_respects_gpu_model() -> None:
    free = {"n1": R(8, 64, 8000), "n2": R(8, 64, 8000)}
    models = {"n1": NodeKind("a100"), "n2": NodeKind("h100")}
    assert place(a_job(1).gpus(1, "h100").build(), free, models) == {"n2": R(1, 1, 1024)}
    assert place(a_job(1).gpus(1, "b200").build(), free, models) is None
    assert place(a_job(1).gpus(1, "a100").nodes(2).build(), free, models) is None
    assert place(a_job(1).gpus(0, "b200").build(), free, models) == {"n1": R(0, 1, 1024)}


def test_place_leaves_out_excluded_nodes() -> None:
    free = {"n1": R(2, 64, 8000), "n2": R(8, 64, 8000)}
    job = a_job(1).gpus(2).build()
    assert place(job, free, H100) == {"n1": R(2, 1, 1024)}
    assert place(job, free, H100, excluded=frozenset({"n1"})) == {"n2": R(2, 1, 1024)}
    assert place(job, free, H100, excluded=frozenset({"n1", "n2"})) is None


def test_place_does_not_change_free() -> None:
    free = {"n1": R(8, 64, 8000)}
    place(a_job(1).gpus(2).build(), free, H100)
    assert free == {"n1": R(8, 64, 8000)}


def test_take_subtracts_each_node() -> None:
    free = {"n1": R(8, 64, 8000), "n2": R(8, 64, 8000), "n3": R(1, 1, 1)}
    take(free, {"n1": R(2, 4, 1000), "n2": R(8, 64, 8000)})
    assert free == {"n1": R(6, 60, 7000), "n2": R(0, 0, 0), "n3": R(1, 1, 1)}


# ---- reserve ---------------------------------------------------------------------------------


def test_reserve_waits_for_the_first_end_that_makes_room() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2")],
        running=[
            running(100, {"n1": 8}, started_at=0, limit=3000),
            running(101, {"n2": 4}, started_at=0, limit=1000),
            running(102, {"n2": 4}, started_at=500, limit=1000),
        ],
    )
    head = a_job(1).gpus(8).build()
    # Ends: 101 at 1000 (n2 has 4: not enough), 102 at 1500 (n2 has 8).
    assert reserve(head, snap, [], now=0) == Reservation(1500, frozenset({"n2"}))


def test_reserve_ties_on_end_break_by_job_id() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2")],
        running=[
            running(200, {"n2": 8}, started_at=0, limit=1000),
            running(100, {"n1": 8}, started_at=0, limit=1000),
        ],
    )
    # Both end at 1000; releasing 100 first frees n1, which is enough.
    assert reserve(a_job(1).gpus(8).build(), snap, [], now=0) == Reservation(
        1000, frozenset({"n1"})
    )


def test_reserve_for_a_gang_takes_every_node_it_needs() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2"), a_node("n3")],
        running=[
            running(100, {"n1": 8}, started_at=0, limit=100),
            running(101, {"n2": 8, "n3": 8}, started_at=0, limit=200),
        ],
    )
    head = a_job(1).gpus(8).nodes(2).build()
    assert reserve(head, snap, [], now=10) == Reservation(200, frozenset({"n1", "n2"}))


def test_reserve_counts_jobs_started_this_round() -> None:
    snap = snapshot([a_node("n1")], running=[running(100, {"n1": 2}, started_at=0, limit=5000)])
    just = a_job(2).gpus(6).limit(700).build()
    started = [(just, Start(2, {"n1": just.per_node}))]
    head = a_job(1).gpus(8).build()
    # n1 holds 100 (until 5000) and the new job 2 (until 100 + 700).
    assert reserve(head, snap, started, now=100) == Reservation(5000, frozenset({"n1"}))
    head6 = a_job(1).gpus(6).build()
    assert reserve(head6, snap, started, now=100) == Reservation(800, frozenset({"n1"}))


def test_reserve_never_in_the_past() -> None:
    snap = snapshot([a_node("n1")], running=[running(100, {"n1": 8}, started_at=0, limit=10)])
    assert reserve(a_job(1).gpus(8).build(), snap, [], now=50) == Reservation(50, frozenset({"n1"}))


def test_reserve_for_a_job_that_can_never_fit_is_infinite_and_empty() -> None:
    snap = snapshot([a_node("n1")], running=[running(100, {"n1": 8}, started_at=0, limit=10)])
    reservation = reserve(a_job(1).gpus(9).build(), snap, [], now=0)
    assert math.isinf(reservation.start_at)
    assert reservation.nodes == frozenset()


def test_reserve_with_nothing_running_is_infinite() -> None:
    snap = snapshot([a_node("n1").unschedulable()])
    reservation = reserve(a_job(1).gpus(1).build(), snap, [], now=0)
    assert reservation == Reservation(math.inf, frozenset())
