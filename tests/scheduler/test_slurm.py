"""Golden tests for the `slurm` baseline, outcomes computed by hand from Slurm's documented rules.

Weights as in slurm.py: priority = floor(10000·FS + 1000·AGE + 1000·JS); nodes have 8 GPUs.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifactory.scheduler import Policy, Snapshot, schedule
from aifactory.scheduler.slurm import SlurmKnobs, by_priority, fair_tree
from aifactory.scheduler.snapshot import ProjectView
from aifactory.scheduler.usage import WEEK_S
from tests.scheduler.builders import a_job, a_node, running, snapshot, started_gpus

SLURM = Policy(name="slurm")
EASY = Policy(name="fifo")


def test_fair_tree_ranks_projects_by_share_over_usage() -> None:
    projects = [
        ProjectView("heavy", usage=300.0),
        ProjectView("light", usage=100.0),
        ProjectView("idle"),  # no usage: level fairshare ∞, first
        ProjectView("twin", usage=100.0),  # ties with light: both get the higher rank
    ]
    assert fair_tree(projects) == {"idle": 1.0, "light": 0.75, "twin": 0.75, "heavy": 0.25}


def test_fair_tree_weighs_usage_against_shares() -> None:
    # big holds 3 of 4 shares and 2/3 of the usage: LF = 0.75/0.667 > small's 0.25/0.333.
    projects = [ProjectView("big", shares=3, usage=200.0), ProjectView("small", usage=100.0)]
    assert fair_tree(projects) == {"big": 1.0, "small": 0.5}


def test_fair_share_dominates_age_and_size() -> None:
    """q used less than p: its job goes first although p's waited a day and is bigger."""
    snap = snapshot(
        [a_node("n1"), a_node("n2")],
        pending=[a_job(1, "p").gpus(8).submitted(0), a_job(2, "q").gpus(1).submitted(86_400)],
    )
    snap = _with_usage(snap, p=500.0, q=100.0)
    assert [j.job_id for j in by_priority(snap, SlurmKnobs(), 86_400.0)] == [2, 1]


def test_age_then_size_order_a_single_projects_jobs() -> None:
    """One project (FS = 1 for all). Age: a day of waiting is worth 1000/7 ≈ 142 points; size:
    an 8-GPU job on a 2-node, 16-GPU facility scores (1/2 + 8/16)/2·1000 = 500, a 1-GPU job
    (1/2 + 1/16)/2·1000 = 281."""
    snap = snapshot(
        [a_node("n1"), a_node("n2")],
        pending=[
            a_job(1).gpus(1).submitted(0),  # 10000 + 142 + 281 = 10423
            a_job(2).gpus(8).submitted(86_400),  # 10000 + 0 + 500 = 10500
            a_job(3).gpus(1).submitted(86_400),  # 10000 + 0 + 281 = 10281
        ],
    )
    assert [j.job_id for j in by_priority(snap, SlurmKnobs(), 86_400.0)] == [2, 1, 3]


def test_age_stops_counting_at_max_age() -> None:
    """Both waited past PriorityMaxAge (7 days): equal age factor, so submit time decides."""
    snap = snapshot(
        [a_node("n1")],
        pending=[a_job(1).gpus(1).submitted(100), a_job(2).gpus(1).submitted(0)],
    )
    now = 3 * WEEK_S
    assert [j.job_id for j in by_priority(snap, SlurmKnobs(), now)] == [2, 1]


def test_main_pass_stops_at_the_first_job_that_does_not_fit() -> None:
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
        pending=[a_job(1).gpus(8), a_job(2).gpus(1).limit(10)],
    )
    assert schedule(snap, Policy(name="slurm", backfill=False), 10.0) == []
    # With backfill, job 2 ends (by its limit) before job 1 could start at 1000: it goes.
    assert started_gpus(schedule(snap, SLURM, 10.0)) == [(2, {"n1": 1})]


def _two_reservations_then(last_limit: float) -> Snapshot:
    """n1 busy until 100, n2 half busy until 300. A (8 GPUs, 1000 s) reserves n1 from 100;
    B (8 GPUs) reserves n2 from 300; C (4 GPUs) could start on n2's free half now."""
    return snapshot(
        [a_node("n1"), a_node("n2")],
        running=[
            running(100, {"n1": 8}, started_at=0, limit=100),
            running(101, {"n2": 4}, started_at=0, limit=300),
        ],
        pending=[
            a_job(1).gpus(8).limit(1000),
            a_job(2).gpus(8).limit(1000),
            a_job(3).gpus(4).limit(last_limit),
        ],
    )


def test_backfill_reserves_for_every_blocked_job_not_only_the_first() -> None:
    """C (500 s) would still run at 300: it would delay B. EASY (a reservation for A only)
    starts it."""
    snap = _two_reservations_then(500)
    assert schedule(snap, SLURM, 10.0) == []
    assert started_gpus(schedule(snap, EASY, 10.0)) == [(3, {"n2": 4})]


def test_backfill_lets_a_job_through_that_ends_before_every_reservation() -> None:
    snap = _two_reservations_then(200)  # 10 + 200 < 300: done before B needs n2
    assert started_gpus(schedule(snap, SLURM, 10.0)) == [(3, {"n2": 4})]


def test_reservations_take_whole_nodes() -> None:
    """A (4 GPUs, starts at 100 on n1 by its plan) reserves all of n1: job 2 (2 GPUs, long)
    may not use n1's other free half although A needs only 4 of its 8 GPUs."""
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 6}, started_at=0, limit=100)],
        pending=[a_job(1).gpus(4).limit(1000), a_job(2).gpus(2).limit(1000)],
    )
    assert schedule(snap, SLURM, 10.0) == []


def test_a_job_that_can_never_fit_does_not_block_the_queue() -> None:
    snap = snapshot([a_node("n1")], pending=[a_job(1).gpus(16), a_job(2).gpus(8)])
    assert started_gpus(schedule(snap, SLURM, 0.0)) == [(2, {"n1": 8})]


def test_backfill_tests_at_most_bf_max_job_test_jobs() -> None:
    knobs = SlurmKnobs(bf_max_job_test=1)
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 4}, started_at=0, limit=1000)],
        pending=[a_job(1).gpus(8), a_job(2).gpus(8), a_job(3).gpus(1).limit(10)],
    )
    # Job 1 blocks, job 2 is the one tested job (it reserves), job 3 is never looked at.
    assert schedule(snap, Policy(name="slurm", slurm=knobs), 10.0) == []
    assert started_gpus(schedule(snap, SLURM, 10.0)) == [(3, {"n1": 1})]


@pytest.mark.parametrize("usage", [0.0, 1e9])
def test_slurm_never_preempts(usage: float) -> None:
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 8}, project="hog")],
        pending=[a_job(1, "p").gpus(8)],
    )
    snap = _with_usage(snap, hog=usage, p=0.0)
    assert schedule(snap, SLURM, 10.0) == []


def _with_usage(snap: Snapshot, **usage: float) -> Snapshot:
    return replace(snap, projects={p: ProjectView(p, usage=u) for p, u in usage.items()})
