"""Golden tests for `schedule`: FIFO with EASY backfill, outcomes computed by hand.

Each case is a small facility, what runs, what waits and the time; the expected outcome is the
list of starts, in order, as `(job_id, {node: gpus})`. Nodes have 8 H100s unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from aifactory.domain.resources import Resources
from aifactory.scheduler import NAMED, Policy, Snapshot, Start, schedule
from tests.scheduler.builders import a_job, a_node, running, snapshot, started_gpus

FIFO = Policy(name="fifo")  # the `easy` policy: FIFO with EASY backfill
NO_BACKFILL = Policy(name="fifo", backfill=False)


@dataclass(frozen=True)
class Case:
    name: str
    snapshot: Snapshot
    expected: list[tuple[int, dict[str, int]]]
    policy: Policy = FIFO
    now: float = 0.0


CASES = [
    # ---- strict FIFO ---------------------------------------------------------------------
    Case(
        "empty-queue-starts-nothing",
        snapshot([a_node("n1")]),
        [],
    ),
    Case(
        "everything-fits-starts-in-submit-order",
        snapshot(
            [a_node("n1"), a_node("n2")],
            pending=[a_job(1).gpus(4), a_job(2).gpus(4), a_job(3).gpus(8)],
        ),
        # 1 → n1 (tie on free GPUs, id breaks it); 2 → n1 (best fit: 4 free < 8); 3 → n2.
        [(1, {"n1": 4}), (2, {"n1": 4}), (3, {"n2": 8})],
    ),
    Case(
        "submit-time-not-id-or-tuple-order-decides",
        snapshot(
            [a_node("n1")],
            pending=[
                a_job(1).gpus(2).submitted(30),
                a_job(2).gpus(2).submitted(10),
                a_job(3).gpus(2).submitted(20),
            ],
        ),
        [(2, {"n1": 2}), (3, {"n1": 2}), (1, {"n1": 2})],
    ),
    Case(
        "same-submit-time-lower-id-first",
        snapshot(
            [a_node("n1").gpus(4)],
            pending=[a_job(9).gpus(2).submitted(5), a_job(4).gpus(4).submitted(5)],
        ),
        # 4 goes first and takes the node; 9 is blocked and, ending after 4's limit, waits.
        [(4, {"n1": 4})],
    ),
    Case(
        "running-jobs-use-capacity",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[running(100, {"n1": 6}), running(101, {"n2": 3})],
            pending=[a_job(1).gpus(5), a_job(2).gpus(2)],
        ),
        # Free: n1 2, n2 5. 1 → n2 (only room); 2 → n1 (the only room left).
        [(1, {"n2": 5}), (2, {"n1": 2})],
    ),
    Case(
        "cpu-and-memory-count-too",
        snapshot(
            [a_node("n1").cpus(8).memory(10_000), a_node("n2").cpus(64)],
            pending=[a_job(1).gpus(1).cpus(16), a_job(2).gpus(1).memory(20_000)],
        ),
        # Best fit would pick n1 (tie on GPUs, fewer CPUs), but n1 lacks the CPUs / memory.
        [(1, {"n2": 1}), (2, {"n2": 1})],
    ),
    # ---- head-of-line blocking without backfill ---------------------------------------------
    Case(
        "no-backfill-blocks-at-the-first-job-that-does-not-fit",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(1), a_job(2).gpus(4), a_job(3).gpus(1).limit(10)],
        ),
        [(1, {"n1": 1})],
        policy=NO_BACKFILL,
    ),
    Case(
        "no-backfill-a-head-that-can-never-fit-blocks-everything",
        snapshot(
            [a_node("n1")],
            pending=[a_job(1).gpus(16), a_job(2).gpus(1)],
        ),
        [],
        policy=NO_BACKFILL,
    ),
    # ---- EASY backfill --------------------------------------------------------------------
    Case(
        "short-job-backfills-when-it-ends-before-the-reservation",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(500)],
        ),
        # Head 1 is reserved n1 at t=1000; 2 ends at 500 ≤ 1000.
        [(2, {"n1": 2})],
    ),
    Case(
        "long-job-may-not-take-the-reserved-node",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(3600)],
        ),
        [],
    ),
    Case(
        "ending-exactly-at-the-reservation-is-in-time",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(900)],
        ),
        [(2, {"n1": 2})],
        now=100,
    ),
    Case(
        "one-second-late-is-too-late",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(901)],
        ),
        [],
        now=100,
    ),
    Case(
        "long-job-backfills-on-a-node-the-head-will-not-need",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                running(100, {"n1": 8}, started_at=0, limit=1000),
                running(101, {"n2": 4}, started_at=0, limit=2000),
            ],
            pending=[a_job(1).gpus(8), a_job(2).gpus(4).limit(5000)],
        ),
        # Head 1 needs a whole node: n1 at t=1000. 2 runs long but on n2, which 1 won't use.
        [(2, {"n2": 4})],
    ),
    Case(
        "long-job-blocked-when-the-only-room-is-reserved",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                running(100, {"n1": 6}, started_at=0, limit=1000),
                running(101, {"n2": 8}, started_at=0, limit=2000),
            ],
            pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(5000), a_job(3).gpus(2).limit(999)],
        ),
        # Head 1 is reserved n1 at 1000. 2 would only fit on n1 and ends too late; 3 is short.
        [(3, {"n1": 2})],
    ),
    Case(
        "reservation-counts-jobs-started-this-round",
        snapshot(
            [a_node("n1")],
            pending=[
                a_job(1).gpus(6).limit(1000),
                a_job(2).gpus(8),
                a_job(3).gpus(2).limit(2000),
                a_job(4).gpus(2).limit(1000),
            ],
        ),
        # 1 starts; 2 waits for 1's end at t=1000; 3 would outlast it, 4 just fits.
        [(1, {"n1": 6}), (4, {"n1": 2})],
    ),
    Case(
        "several-short-jobs-backfill-in-submit-order-until-full",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 5}, started_at=0, limit=1000)],
            pending=[
                a_job(1).gpus(8),
                a_job(2).gpus(2).limit(100),
                a_job(3).gpus(2).limit(100),
                a_job(4).gpus(1).limit(100),
            ],
        ),
        [(2, {"n1": 2}), (4, {"n1": 1})],
    ),
    Case(
        "overdue-running-job-reserves-now-and-blocks-long-backfill",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 8}, started_at=0, limit=100)],
            pending=[a_job(1).gpus(8), a_job(2).gpus(0).limit(10)],
        ),
        # 100 is past its limit: 1 is reserved n1 from now (500); nothing may start on n1.
        [],
        now=500,
    ),
    Case(
        "only-the-first-blocked-job-gets-a-reservation",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                running(100, {"n1": 8}, started_at=0, limit=1000),
                running(101, {"n2": 6}, started_at=0, limit=3000),
            ],
            pending=[a_job(1).gpus(8), a_job(2).gpus(4), a_job(3).gpus(2).limit(9000)],
        ),
        # 1 reserves n1. 2 is blocked too but reserves nothing; 3 takes n2's room although
        # that delays 2 (EASY protects the head only).
        [(3, {"n2": 2})],
    ),
    Case(
        "head-that-can-never-fit-does-not-block-the-queue",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(16), a_job(2).gpus(4).limit(99_999)],
        ),
        [(2, {"n1": 4})],
    ),
    # ---- gangs ------------------------------------------------------------------------------
    Case(
        "gang-gets-all-its-nodes",
        snapshot(
            [a_node("n1"), a_node("n2"), a_node("n3")],
            running=[running(100, {"n1": 4})],
            pending=[a_job(1).gpus(8).nodes(2)],
        ),
        [(1, {"n2": 8, "n3": 8})],
    ),
    Case(
        "gang-gets-nothing-when-one-node-is-short",
        snapshot(
            [a_node("n1"), a_node("n2"), a_node("n3")],
            running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(8).nodes(3)],
        ),
        [],
        policy=NO_BACKFILL,
    ),
    Case(
        "blocked-gang-reserves-every-node-it-needs",
        snapshot(
            [a_node("n1"), a_node("n2"), a_node("n3")],
            running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(8).nodes(3), a_job(2).gpus(2).limit(5000)],
        ),
        # 1 is reserved n1+n2+n3 at 1000; 2 outlasts that and every node is reserved.
        [],
    ),
    Case(
        "short-job-backfills-around-a-blocked-gang",
        snapshot(
            [a_node("n1"), a_node("n2"), a_node("n3")],
            running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(8).nodes(3), a_job(2).gpus(2).limit(1000)],
        ),
        # 2 fits anywhere; best fit puts it beside the running job, on n1.
        [(2, {"n1": 2})],
    ),
    Case(
        "gang-spans-nodes-with-room-per-node-not-in-total",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[running(100, {"n1": 5}), running(101, {"n2": 5})],
            pending=[a_job(1).gpus(4).nodes(2)],
        ),
        # 6 GPUs free in total but only 3 per node: a 2 × 4 gang does not fit.
        [],
        policy=NO_BACKFILL,
    ),
    # ---- best-fit packing -----------------------------------------------------------------
    Case(
        "best-fit-keeps-a-whole-node-for-a-big-job",
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[running(100, {"n2": 6})],
            pending=[a_job(1).gpus(2), a_job(2).gpus(8)],
        ),
        # First fit would put 1 on n1 and block 2; best fit fills n2's hole.
        [(1, {"n2": 2}), (2, {"n1": 8})],
        policy=NO_BACKFILL,
    ),
    Case(
        "best-fit-packs-small-jobs-onto-one-node",
        snapshot(
            [a_node("n1"), a_node("n2")],
            pending=[a_job(i).gpus(2) for i in range(1, 5)] + [a_job(5).gpus(8)],
        ),
        [(1, {"n1": 2}), (2, {"n1": 2}), (3, {"n1": 2}), (4, {"n1": 2}), (5, {"n2": 8})],
        policy=NO_BACKFILL,
    ),
    Case(
        "cpu-only-job-prefers-the-node-without-gpus",
        snapshot(
            [a_node("a-gpu"), a_node("b-cpu").gpus(0).model(None)],
            pending=[a_job(1).gpus(0).cpus(4), a_job(2).gpus(8)],
        ),
        [(1, {"b-cpu": 0}), (2, {"a-gpu": 8})],
    ),
    # ---- GPU models -----------------------------------------------------------------------
    Case(
        "gpu-model-is-respected",
        snapshot(
            [a_node("n1").gpus(8, "a100"), a_node("n2").gpus(8, "h100")],
            pending=[a_job(1).gpus(4, "h100"), a_job(2).gpus(4, "a100"), a_job(3).gpus(4)],
        ),
        # 3 has no model: best fit (tie on 4 free, then id) → n1.
        [(1, {"n2": 4}), (2, {"n1": 4}), (3, {"n1": 4})],
    ),
    Case(
        "gpu-model-blocks-even-with-other-models-free",
        snapshot(
            [a_node("n1").gpus(8, "a100"), a_node("n2").gpus(8, "h100")],
            running=[running(100, {"n2": 8}, started_at=0, limit=1000)],
            pending=[a_job(1).gpus(1, "h100")],
        ),
        [],
        policy=NO_BACKFILL,
    ),
    Case(
        "model-without-gpus-places-anywhere",
        snapshot(
            [a_node("n1").gpus(8, "a100")],
            pending=[a_job(1).gpus(0, "h100")],
        ),
        [(1, {"n1": 0})],
    ),
    Case(
        "unknown-model-never-fits-and-does-not-block-backfill",
        snapshot(
            [a_node("n1").gpus(8, "a100")],
            pending=[a_job(1).gpus(1, "b200"), a_job(2).gpus(8)],
        ),
        [(2, {"n1": 8})],
    ),
    Case(
        "gang-of-one-model-across-a-mixed-facility",
        snapshot(
            [
                a_node("a1").gpus(8, "a100"),
                a_node("h1").gpus(8, "h100"),
                a_node("h2").gpus(8, "h100"),
            ],
            pending=[a_job(1).gpus(8, "h100").nodes(2)],
        ),
        [(1, {"h1": 8, "h2": 8})],
    ),
    # ---- unschedulable nodes --------------------------------------------------------------
    Case(
        "unschedulable-node-is-ignored",
        snapshot(
            [a_node("n1").unschedulable(), a_node("n2")],
            pending=[a_job(1).gpus(8), a_job(2).gpus(1)],
        ),
        [(1, {"n2": 8})],
        policy=NO_BACKFILL,
    ),
    Case(
        "unschedulable-node-does-not-count-toward-a-gang",
        snapshot(
            [a_node("n1").unschedulable(), a_node("n2")],
            pending=[a_job(1).gpus(8).nodes(2), a_job(2).gpus(8)],
        ),
        # 1 can never fit on what is schedulable: no reservation, 2 goes ahead.
        [(2, {"n2": 8})],
    ),
    Case(
        "reservation-ignores-unschedulable-nodes",
        snapshot(
            [a_node("n1").unschedulable(), a_node("n2")],
            running=[
                running(100, {"n1": 8}, started_at=0, limit=10),
                running(101, {"n2": 8}, started_at=0, limit=1000),
            ],
            pending=[a_job(1).gpus(8), a_job(2).gpus(1).limit(5000)],
        ),
        # 100 ends first but frees a drained node; 1 is reserved n2 at 1000.
        [],
    ),
    Case(
        "running-job-on-an-unknown-node-is-ignored",
        snapshot(
            [a_node("n1")],
            running=[running(100, {"gone": 8})],
            pending=[a_job(1).gpus(8)],
        ),
        [(1, {"n1": 8})],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case) -> None:
    assert started_gpus(schedule(case.snapshot, case.policy, case.now)) == case.expected


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


def test_start_carries_the_full_per_node_slice() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2")],
        pending=[a_job(1).gpus(4).cpus(12).memory(64_000).nodes(2)],
    )
    assert schedule(snap, FIFO, 0.0) == [
        Start(1, {"n1": Resources(4, 12, 64_000), "n2": Resources(4, 12, 64_000)})
    ]


def test_unknown_policy_is_refused() -> None:
    snap = snapshot([a_node("n1")], pending=[a_job(1)])
    known = "fifo, slurm, fairshare, oracle"
    with pytest.raises(ValueError, match=f"unknown policy 'magic'; known: {known}"):
        schedule(snap, Policy(name="magic"), 0.0)


def test_schedule_does_not_change_the_snapshot() -> None:
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 6}, started_at=0, limit=1000)],
        pending=[a_job(1).gpus(4), a_job(2).gpus(2).limit(10)],
    )
    before = (snap.free_by_node(), [dict(r.placement) for r in snap.running], snap.pending)
    schedule(snap, FIFO, 0.0)
    after = (snap.free_by_node(), [dict(r.placement) for r in snap.running], snap.pending)
    assert after == before


def test_fairshare_with_backfill_is_the_default() -> None:
    assert Policy() == Policy(name="fairshare", backfill=True)
    assert NAMED["easy"] == Policy(name="fifo", backfill=True)


def test_free_by_node_subtracts_running_and_skips_unschedulable() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2").unschedulable(), a_node("n3").gpus(4, "a100")],
        running=[
            running(1, {"n1": Resources(2, 3, 100)}),
            running(2, {"n1": 1, "n2": 8, "gone": 1}),
        ],
    )
    assert snap.free_by_node() == {
        "n1": Resources(5, 61, 511_900),
        "n3": Resources(4, 64, 512_000),
    }
    assert {n: k.gpu_model for n, k in snap.kinds().items()} == {
        "n1": "h100",
        "n2": "h100",
        "n3": "a100",
    }


def test_running_job_expected_end_is_start_plus_limit() -> None:
    assert running(1, {"n1": 1}, started_at=50, limit=70).expected_end == 120


def test_a_never_fitting_head_does_not_lift_the_protection_of_the_next_blocked_job() -> None:
    """n1 has 8 GPUs, 4 busy until t=1000. Job 1 can never fit; job 2 (8 GPUs) is the real
    head and reserves t=1000; job 3 (4 GPUs, long limit) would delay it, so it must wait."""
    from aifactory.scheduler import Policy, schedule
    from tests.scheduler.builders import a_job, a_node, running, snapshot

    snap = snapshot(
        nodes=[a_node("n1").gpus(8)],
        running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
        pending=[a_job(1).gpus(16), a_job(2).gpus(8), a_job(3).gpus(4).limit(99_999)],
    )
    assert schedule(snap, Policy(name="fifo"), now=10.0) == []
