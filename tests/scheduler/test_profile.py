"""NodePlan: earliest starts on per-node timelines with whole-node reservations."""

from __future__ import annotations

from aifactory.scheduler.profile import NodePlan, Slot
from aifactory.scheduler.snapshot import RunningJob
from tests.scheduler.builders import a_job, a_node, running, snapshot


def _by_limit(job: RunningJob) -> float:
    return job.started_at + job.time_limit_s


def _plan() -> NodePlan:
    """n1: 6 of 8 GPUs busy until 100; n2: all 8 busy until 200; n3: free."""
    snap = snapshot(
        [a_node("n1"), a_node("n2"), a_node("n3")],
        running=[
            running(100, {"n1": 6}, started_at=0, limit=100),
            running(101, {"n2": 8}, started_at=0, limit=200),
        ],
    )
    return NodePlan(snap, 0.0, _by_limit)


def test_a_job_starts_now_on_the_fullest_node_that_takes_it() -> None:
    assert _plan().earliest(a_job(1).gpus(2).build(), 50.0) == Slot(0.0, ("n1",))
    assert _plan().earliest(a_job(1).gpus(4).build(), 50.0) == Slot(0.0, ("n3",))


def test_a_reservation_pushes_a_job_to_the_next_node_or_moment() -> None:
    plan = _plan()
    plan.reserve(("n3",), 50.0, 150.0)
    # 4 GPUs for 100 s: n3 is reserved from 50, n1 has room from 100, n3 again from 150.
    assert plan.earliest(a_job(1).gpus(4).build(), 100.0) == Slot(100.0, ("n1",))
    # A 40-second job ends before n3's reservation begins.
    assert plan.earliest(a_job(2).gpus(4).build(), 40.0) == Slot(0.0, ("n3",))


def test_before_a_hard_reservation_a_job_must_end_by_its_limit() -> None:
    plan = _plan()
    plan.reserve(("n3",), 50.0, 150.0, hard=True)
    job = a_job(1).gpus(8).build()
    assert plan.earliest(job, 10.0, limit=10.0) == Slot(0.0, ("n3",))
    # By its limit it would still run at 50: not on n3 now; n1 is whole again at 100.
    assert plan.earliest(job, 10.0, limit=1000.0) == Slot(100.0, ("n1",))


def test_a_gang_starts_when_enough_nodes_are_free_together() -> None:
    plan = _plan()
    plan.start(a_job(1).gpus(8).build(), ("n3",), 300.0)  # n3 now busy until 300
    gang = a_job(2).gpus(8).nodes(2).build()
    # n1 frees at 100, n2 at 200, n3 at 300: two whole nodes together first at 200.
    assert plan.earliest(gang, 50.0) == Slot(200.0, ("n1", "n2"))


def test_a_job_too_big_for_any_node_has_no_slot() -> None:
    assert _plan().earliest(a_job(1).gpus(16).build(), 10.0) is None
