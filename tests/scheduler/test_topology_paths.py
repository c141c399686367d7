"""A required block on the paths the first topology tests did not walk: quota reclaim,
EASY backfill's memo of shapes that found no room, and explanations with drained nodes."""

from __future__ import annotations

from dataclasses import replace

from aifactory.domain.resources import Resources
from aifactory.scheduler import NAMED, NodeView, PendingJob, Policy, RunningJob, Snapshot, schedule
from aifactory.scheduler.decisions import Preempt, Start
from aifactory.scheduler.explain import explain
from aifactory.scheduler.snapshot import ProjectView

WHOLE = Resources(8, 1, 1000)  # a whole node


def _nodes(*ids: str, drained: tuple[str, ...] = ()) -> tuple[NodeView, ...]:
    """Nodes of 8 GPUs whose block is the first letter of their id."""
    return tuple(
        NodeView(
            node_id,
            Resources(8, 32, 64_000),
            "h100",
            schedulable=node_id not in drained,
            out_of_service="drained: PSU swap" if node_id in drained else None,
            block=node_id[0],
        )
        for node_id in ids
    )


def test_reclaim_for_a_one_block_gang_preempts_inside_one_block() -> None:
    """q is guaranteed 16 GPUs and holds none; b borrows all four nodes, its newest jobs on
    a1 and b1. Preempting those two would not give q's one-block gang a block: the policy
    must preempt a whole block's borrowers (or none), and never fail the round."""
    nodes = _nodes("a1", "a2", "b1", "b2")
    borrowers = tuple(
        RunningJob(100 + i, "b", {node: WHOLE}, started, 1e5, preemptible=True)
        for i, (node, started) in enumerate(
            [("a1", 900.0), ("b1", 900.0), ("a2", 0.0), ("b2", 0.0)]
        )
    )
    gang = PendingJob(1, "q", 950.0, WHOLE, nodes=2, one_block=True)
    snap = Snapshot(nodes, borrowers, (gang,), projects={"q": ProjectView("q", quota_gpus=16)})
    decisions = schedule(snap, Policy(), 1000.0)  # fails today: AssertionError in _reclaim
    where = {run.job_id: next(iter(run.placement)) for run in borrowers}
    preempted = [where[d.job_id] for d in decisions if isinstance(d, Preempt)]
    assert len(preempted) == 2
    assert len({node[0] for node in preempted}) == 1, preempted


def test_easy_backfill_does_not_skip_a_gang_because_a_one_block_twin_found_no_room() -> None:
    """The head (5 nodes) blocks and reserves every node; a2 and b2 are free, in two blocks,
    for 600 s jobs that end before the reservation. Job 3 must stay in one block and cannot
    start; job 4, the same shape without that need, can, on a2 and b2."""
    nodes = _nodes("a1", "a2", "b1", "b2", "c1")
    running = (RunningJob(1, "p", {"a1": WHOLE, "b1": WHOLE, "c1": WHOLE}, 0.0, 10_000.0),)
    head = PendingJob(2, "p", 1.0, WHOLE, nodes=5)
    twin = PendingJob(3, "p", 2.0, WHOLE, nodes=2, time_limit_s=600.0, one_block=True)
    spread = replace(twin, job_id=4, submitted_at=3.0, one_block=False)
    alone = schedule(Snapshot(nodes, running, (head, spread)), NAMED["easy"], 10.0)
    assert [d.job_id for d in alone if isinstance(d, Start)] == [4]
    decisions = schedule(Snapshot(nodes, running, (head, twin, spread)), NAMED["easy"], 10.0)
    assert [d.job_id for d in decisions if isinstance(d, Start)] == [4]  # fails today: []


def test_a_one_block_gang_waiting_for_a_drained_node_is_not_told_never() -> None:
    """Block a would hold the gang once a2 is back (submission accepted it, counting every
    node): the reason names the drained node, as it does for a gang without a block."""
    nodes = _nodes("a1", "a2", "b1", "b2", drained=("a2", "b2"))
    gang = PendingJob(9, "p", 0.0, WHOLE, nodes=2, one_block=True)
    said = explain(Snapshot(nodes, (), (gang,)), 10.0, NAMED["fifo"])[9]
    assert said.reason.startswith("waiting for nodes out of service: needs 2 nodes")
    assert said.reason.endswith(
        "can hold it: a2 (drained: PSU swap) (it must run inside one network block: block a)"
    )
    whole = replace(gang, nodes=3)  # no block has three nodes, drained or not
    never = explain(Snapshot(nodes, (), (whole,)), 10.0, NAMED["fifo"])[9]
    assert never.reason.startswith("can never start here: it must run inside one network block")
