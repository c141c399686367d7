"""Scheduler invariants over random facilities (hypothesis).

- no over-commit: on every node, what runs plus what starts fits its capacity;
- gang all-or-nothing: a Start places exactly `nodes` distinct schedulable nodes, each with the
  job's whole per-node slice (and its GPU model);
- FIFO shape: without backfill the starts are a prefix of the queue and the first job left
  waiting really does not fit; backfill only adds starts after those, in queue order;
- determinism: the same snapshot gives the same decisions, whatever the order of its tuples;
- EASY: no backfilled job delays the blocked head past the reservation it had before backfill.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler import (
    NodeView,
    PendingJob,
    Policy,
    RunningJob,
    Snapshot,
    Start,
    schedule,
)
from aifactory.scheduler.backfill import reserve
from aifactory.scheduler.placement import place

MODELS = (None, "a100", "h100")
# Times on a coarse grid, so that ends and reservations coincide or miss by one step often.
LIMITS = (50.0, 100.0, 150.0, 500.0, 1000.0, 3600.0)
AGES = (0.0, 50.0, 100.0, 500.0, 1000.0, 5000.0)
JOB_IDS = (5, 2, 8, 1, 7, 3, 6, 4)
PROPERTIES = settings(max_examples=200, deadline=None)


# Each shape is one choice out of a product (simplest first, so shrinking goes there):
# generating a snapshot costs far more than scheduling it, so keep the choices few.
def _shapes(*axes: Iterable[object]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.sampled_from(list(itertools.product(*axes)))


GPUS = (0, 1, 2, 4, 8)
# gpus, cpus, memory, model, schedulable (mostly)
NODE = _shapes(
    (8, 4, 2, 0), (16, 8, 4), (16384, 8192, 4096), (*MODELS, "h100"), (True,) * 5 + (False,)
)
# A running job's slice on one node (clamped to what the node has left)
USED = _shapes((0, 1, 2, 4, 8), (0, 1, 4, 16), (0, 512, 1024, 8192))
# per node: gpus, cpus, memory, nodes (mostly one), model (mostly any)
JOB_SHAPE = _shapes(GPUS, (0, 1, 2, 4), (0, 512, 1024, 2048), (1, 1, 2, 3), (None, *MODELS))
# time limit, submit time (ties happen), project
JOB_TIMES = _shapes(LIMITS, range(0, 21, 2), ("p", "q"))
PENDING = st.lists(st.tuples(JOB_SHAPE, JOB_TIMES), max_size=len(JOB_IDS))
BUSY_PENDING = st.lists(st.tuples(JOB_SHAPE, JOB_TIMES), min_size=3, max_size=len(JOB_IDS))
# Running jobs: [(node index, slice)] (a repeated node counts once), age, limit.
RUNNING_JOB = st.tuples(
    st.lists(st.tuples(st.integers(0, 4), USED), min_size=1, max_size=3),
    st.sampled_from(AGES),
    st.sampled_from(LIMITS),
)
RUNNING = st.lists(RUNNING_JOB, max_size=6)
BUSY_RUNNING = st.lists(RUNNING_JOB, min_size=2, max_size=6)


@st.composite
def snapshots(draw: st.DrawFn, busy: bool = False) -> tuple[Snapshot, float]:
    """A self-consistent facility: running jobs never exceed any node's capacity.

    A `busy` one always has jobs running and several waiting, so heads get blocked.
    """
    nodes = [
        NodeView(f"n{i}", Resources(gpus, cpus, mem), model if gpus else None, schedulable)
        for i, (gpus, cpus, mem, model, schedulable) in enumerate(
            draw(st.lists(NODE, min_size=1, max_size=5))
        )
    ]
    now = 50.0 * draw(st.integers(0, 100))
    free = {n.id: n.capacity for n in nodes}
    running: list[RunningJob] = []
    for job_id, (slices, age, limit) in enumerate(
        draw(BUSY_RUNNING if busy else RUNNING), start=1000
    ):
        placement: dict[str, Resources] = {}
        for index, (gpus, cpus, mem) in slices:
            node_id = nodes[index % len(nodes)].id
            if node_id in placement:
                continue
            room = free[node_id]
            used = Resources(min(gpus, room.gpus), min(cpus, room.cpus), min(mem, room.memory_mb))
            placement[node_id] = used
            free[node_id] = room - used
        # Started a while ago, never before 0: some running jobs are past their limit.
        running.append(RunningJob(job_id, "p", placement, max(0.0, now - age), limit))
    pending = [
        PendingJob(
            job_id=job_id,
            project=project,
            submitted_at=float(submitted),
            per_node=Resources(gpus, cpus, mem),
            nodes=nodes_wanted,
            gpu_model=model,
            time_limit_s=limit,
        )
        # Distinct ids that do not follow the list order, so id tie-breaks are exercised.
        for job_id, ((gpus, cpus, mem, nodes_wanted, model), (limit, submitted, project)) in zip(
            JOB_IDS,
            draw(BUSY_PENDING if busy else PENDING),
            strict=False,
        )
    ]
    snap = Snapshot(nodes=tuple(nodes), running=tuple(running), pending=tuple(pending))
    return snap, now


POLICIES = (Policy(name="fifo"), Policy(name="fifo", backfill=False))


def _starts(snap: Snapshot, policy: Policy, now: float) -> list[Start]:
    decisions = schedule(snap, policy, now)
    assert all(isinstance(d, Start) for d in decisions), decisions
    return [d for d in decisions if isinstance(d, Start)]


def _queue(snap: Snapshot) -> list[PendingJob]:
    return sorted(snap.pending, key=lambda j: (j.submitted_at, j.job_id))


def _as_running(snap: Snapshot, starts: list[Start], now: float) -> list[RunningJob]:
    by_id = {j.job_id: j for j in snap.pending}
    return [
        RunningJob(s.job_id, "p", s.placement, now, by_id[s.job_id].time_limit_s) for s in starts
    ]


def _free_at(snap: Snapshot, jobs: list[RunningJob], at: float) -> dict[str, Resources]:
    """Free capacity of the schedulable nodes at `at`, once every job ended by then is gone."""
    free = {n.id: n.capacity for n in snap.nodes if n.schedulable}
    for job in jobs:
        if job.expected_end > at:
            for node_id, amount in job.placement.items():
                if node_id in free:
                    free[node_id] = free[node_id] - amount
    return free


# Generating a snapshot costs far more than scheduling it, so each example checks both
# policies and several invariants.

# ---- safety: no over-commit, gang all-or-nothing -------------------------------------------


def _assert_no_over_commit(snap: Snapshot, starts: list[Start], now: float) -> None:
    used = {n.id: Resources() for n in snap.nodes}
    for job in [*snap.running, *_as_running(snap, starts, now)]:
        for node_id, amount in job.placement.items():
            used[node_id] = used[node_id] + amount
    for node in snap.nodes:
        assert used[node.id] <= node.capacity, (node, used[node.id])


def _assert_whole_gangs(snap: Snapshot, starts: list[Start]) -> None:
    pending = {j.job_id: j for j in snap.pending}
    nodes = {n.id: n for n in snap.nodes}
    counts = Counter(s.job_id for s in starts)
    assert all(c == 1 for c in counts.values()), counts  # a job starts at most once
    for start in starts:
        job = pending[start.job_id]  # only pending jobs start
        assert len(start.placement) == job.nodes  # keys of a mapping: distinct nodes
        for node_id, amount in start.placement.items():
            assert amount == job.per_node
            assert nodes[node_id].schedulable
            if job.gpu_model is not None and job.per_node.gpus > 0:
                assert nodes[node_id].gpu_model == job.gpu_model


@PROPERTIES
@given(snapshots())
def test_never_over_commits_and_starts_only_whole_gangs(generated: tuple[Snapshot, float]) -> None:
    snap, now = generated
    for policy in POLICIES:
        starts = _starts(snap, policy, now)
        _assert_no_over_commit(snap, starts, now)
        _assert_whole_gangs(snap, starts)


# ---- FIFO shape -----------------------------------------------------------------------------


@PROPERTIES
@given(snapshots())
def test_fifo_starts_in_queue_order_and_backfill_only_adds(
    generated: tuple[Snapshot, float],
) -> None:
    snap, now = generated
    queue = [j.job_id for j in _queue(snap)]
    plain = _starts(snap, Policy(name="fifo", backfill=False), now)
    # Without backfill: a prefix of the queue.
    assert [s.job_id for s in plain] == queue[: len(plain)]
    # The first job left waiting really does not fit now.
    if len(plain) < len(queue):
        head = _queue(snap)[len(plain)]
        free = _free_at(snap, [*snap.running, *_as_running(snap, plain, now)], -math.inf)
        assert place(head, free, snap.kinds()) is None
    # With backfill: the same starts first, then more, still in queue order.
    easy = _starts(snap, Policy(name="fifo"), now)
    assert easy[: len(plain)] == plain
    ranks = [queue.index(s.job_id) for s in easy]
    assert ranks == sorted(ranks)


# ---- determinism ---------------------------------------------------------------------------


@PROPERTIES
@given(snapshots(), st.randoms(use_true_random=False))
def test_same_snapshot_same_decisions_in_any_order(
    generated: tuple[Snapshot, float], rnd: random.Random
) -> None:
    snap, now = generated
    pending, running, nodes = list(snap.pending), list(snap.running), list(snap.nodes)
    rnd.shuffle(pending)
    rnd.shuffle(running)
    rnd.shuffle(nodes)
    shuffled = Snapshot(nodes=tuple(nodes), running=tuple(running), pending=tuple(pending))
    for policy in POLICIES:
        first = schedule(snap, policy, now)
        assert schedule(snap, policy, now) == first
        assert schedule(shuffled, policy, now) == first
        assert schedule(replace(snap, pending=snap.pending[::-1]), policy, now) == first
        assert schedule(replace(snap, running=snap.running[::-1]), policy, now) == first


# ---- EASY: the head's reservation is never delayed -----------------------------------------


@PROPERTIES
@given(snapshots(busy=True))
def test_backfill_never_delays_the_head(generated: tuple[Snapshot, float]) -> None:
    snap, now = generated
    queue = _queue(snap)
    plain = _starts(snap, Policy(name="fifo", backfill=False), now)
    if len(plain) == len(queue):
        return  # nothing is blocked: nothing to protect
    head = queue[len(plain)]
    by_id = {j.job_id: j for j in snap.pending}
    before = reserve(head, snap, [(by_id[s.job_id], s) for s in plain], now)

    starts = _starts(snap, Policy(name="fifo"), now)
    assert head.job_id not in {s.job_id for s in starts}
    if math.isinf(before.start_at):
        assert before.nodes == frozenset()  # can never fit: reserves nothing
        return
    event("head reserved, others backfilled" if len(starts) > len(plain) else "head reserved")
    assert before.start_at >= now
    assert len(before.nodes) == head.nodes
    # At the reserved time, with every job (old and new) gone that has reached its limit, the
    # head still fits on the nodes it was promised.
    everyone = [*snap.running, *_as_running(snap, starts, now)]
    free = _free_at(snap, everyone, before.start_at)
    promised = {n: free[n] for n in before.nodes}
    assert place(head, promised, snap.kinds()) is not None, (head, before, promised)
    # And the scheduler's own view agrees: reserving again now gives no later start.
    after = reserve(head, replace(snap, running=tuple(everyone)), [], now)
    assert after.start_at <= before.start_at
