"""Gangs inside one network block: the choice of nodes, the plan's patience, lone jobs kept
out of idle blocks, and that a required block is never broken (hypothesis, every policy)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler import NAMED, NodeView, Policy, schedule
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.scheduler.profile import NodePlan
from aifactory.scheduler.snapshot import NodeKind, PendingJob, RunningJob, Snapshot
from aifactory.scheduler.topology import blocks_spanned, choose
from aifactory.sim.engine import Simulator, cluster
from aifactory.sim.traces import TraceJob, nodes_for
from tests.scheduler.builders import a_job

KINDS = {
    "a1": NodeKind(block="A"),
    "a2": NodeKind(block="A"),
    "a3": NodeKind(block="A"),
    "b1": NodeKind(block="B"),
    "b2": NodeKind(block="B"),
    "c1": NodeKind(block="C"),
}


def test_a_gang_goes_to_the_tightest_block_that_holds_it() -> None:
    assert choose(["a1", "b1", "a2", "b2", "a3"], 2, KINDS, one_block=False) == ["b1", "b2"]
    assert choose(["a1", "b1", "a2", "b2", "a3"], 3, KINDS, one_block=False) == [
        "a1",
        "a2",
        "a3",
    ]


def test_without_one_block_room_it_takes_the_fewest_blocks_or_none_if_required() -> None:
    candidates = ["c1", "b1", "a1", "a2"]
    assert choose(candidates, 3, KINDS, one_block=False) == ["a1", "a2", "c1"]
    assert choose(candidates, 3, KINDS, one_block=True) is None
    assert choose(candidates, 5, KINDS, one_block=False) is None


def test_nodes_without_blocks_are_one_block_as_before() -> None:
    plain = dict.fromkeys(["n1", "n2", "n3"], NodeKind())
    assert choose(["n3", "n1", "n2"], 2, plain, one_block=True) == ["n3", "n1"]
    assert blocks_spanned(["n1", "n2"], plain) == 1


def _facility(*, blocks: bool = True) -> tuple[NodeView, ...]:
    """Two blocks of two 8-GPU nodes: b000 = n0000, n0001; b001 = n0002, n0003."""
    return cluster([8, 8, 8, 8], 2 if blocks else 0)


def _busy(job_id: int, node: str, ends_at: float) -> RunningJob:
    return RunningJob(job_id, "p", {node: Resources(8, 8, 1024)}, 0.0, ends_at)


def _gang(*, one_block: bool = False) -> PendingJob:
    return PendingJob(9, "p", 0.0, Resources(8, 8, 1024), nodes=2, one_block=one_block)


def test_a_gang_waits_for_one_block_only_within_its_patience() -> None:
    # n0000 busy until 100, n0002 until 1000: now (0) only n0001 and n0003 are free, in two
    # blocks; block b000 is whole at 100.
    running = (_busy(1, "n0000", 100.0), _busy(2, "n0002", 1000.0))
    snapshot = Snapshot(_facility(), running=running)

    def plan() -> NodePlan:
        return NodePlan(snapshot, 0.0, lambda run: run.started_at + run.time_limit_s)

    at_once = plan().earliest(_gang(), 600.0)
    assert at_once is not None
    assert at_once.start_at == 0.0
    assert set(at_once.nodes) == {"n0001", "n0003"}
    patient = plan().earliest(_gang(), 600.0, patience=600.0)
    assert patient is not None
    assert patient.start_at == 100.0
    assert set(patient.nodes) == {"n0000", "n0001"}
    too_far = plan().earliest(_gang(), 600.0, patience=50.0)
    assert too_far is not None
    assert too_far.start_at == 0.0
    required = plan().earliest(_gang(one_block=True), 600.0)
    assert required is not None
    assert required.start_at == 100.0
    assert set(required.nodes) == {"n0000", "n0001"}


def test_a_required_block_larger_than_any_block_never_fits() -> None:
    job = PendingJob(9, "p", 0.0, Resources(8, 8, 1024), nodes=3, one_block=True)
    plan = NodePlan(Snapshot(_facility()), 0.0, lambda run: run.time_limit_s)
    assert plan.earliest(job, 60.0) is None
    assert plan.earliest(PendingJob(9, "p", 0.0, Resources(8, 8, 1024), nodes=3), 60.0)


def test_a_lone_job_leaves_the_idle_block_whole() -> None:
    # b000 has two idle nodes, b001 one (n0003): a whole-node job goes to b001, so b000 stays
    # whole for a gang; without blocks it takes the first node by id, as before.
    busy = (_busy(1, "n0002", 500.0),)
    plan = NodePlan(Snapshot(_facility(), running=busy), 0.0, lambda run: run.time_limit_s)
    slot = plan.earliest(a_job(5).gpus(8).build(), 60.0)
    assert slot is not None
    assert slot.nodes == ("n0003",)
    blind = Snapshot(_facility(blocks=False), running=busy)
    plain = NodePlan(blind, 0.0, lambda run: run.time_limit_s)
    found = plain.earliest(a_job(5).gpus(8).build(), 60.0)
    assert found is not None
    assert found.nodes == ("n0000",)


# ---- through the simulator: a required block is never broken --------------------------------
NODES = cluster([4] * 6, 2)  # three blocks of two 4-GPU nodes
BLOCK = {node.id: node.block for node in NODES}
POLICIES = [*NAMED.values(), *SIM_ONLY.values()]
# gpus (8: a gang of two nodes, 12: three nodes — more than a block), limit, required
JOB = st.sampled_from(list(itertools.product((1, 4, 8, 12), (60.0, 600.0, 3600.0), (False, True))))


@st.composite
def traces(draw: st.DrawFn) -> list[TraceJob]:
    asks = draw(
        st.lists(
            st.tuples(
                JOB, st.sampled_from(range(0, 600, 50)), st.sampled_from((30.0, 300.0, 3000.0))
            ),
            min_size=1,
            max_size=14,
        )
    )
    jobs = []
    for job_id, ((gpus, limit, required), submit, duration) in enumerate(asks, start=1):
        nodes = nodes_for(gpus, 4)
        jobs.append(
            TraceJob(
                job_id,
                float(submit),
                duration,
                gpus,
                nodes,
                "a" if job_id % 2 else "b",
                time_limit=limit,
                one_block=required and nodes == 2,
            )
        )
    return jobs


@settings(max_examples=60, deadline=None)
@given(jobs=traces(), policy=st.sampled_from(POLICIES))
def test_a_required_block_is_never_broken(jobs: list[TraceJob], policy: Policy) -> None:
    result = Simulator(jobs, NODES, policy, schedule, sample_s=1e9).run()
    for done in result.finished:
        if done.job.one_block:
            assert len({BLOCK[n] for n in done.nodes}) == 1, done
    assert result.unfinished == 0  # and every job still runs
    assert {f.job.job_id for f in result.finished} == {job.job_id for job in jobs}
