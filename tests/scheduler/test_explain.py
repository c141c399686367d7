"""Pending-job explanations and start estimates on a hand-made facility."""

from __future__ import annotations

from dataclasses import replace

from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, Policy, RunningJob, Snapshot
from aifactory.scheduler.estimates import RuntimeHistory
from aifactory.scheduler.explain import explain
from aifactory.scheduler.fairshare import FairshareKnobs
from aifactory.scheduler.snapshot import ProjectView

NODE = NodeView("n1", Resources(8, 32, 64_000), "h100")
FIFO = Policy(name="fifo")


def pending(job_id: int, gpus: int, limit: float, submitted: float) -> PendingJob:
    return PendingJob(job_id, "p", submitted, Resources(gpus, 1, 1000), time_limit_s=limit)


def test_reasons_positions_and_cautious_start_estimates() -> None:
    snapshot = Snapshot(
        nodes=(NODE,),
        running=(RunningJob(9, "p", {"n1": Resources(4, 1, 1000)}, 0.0, 100.0),),
        pending=(
            pending(1, 8, 50, submitted=1),  # needs the whole node: after job 9, at 100
            pending(2, 4, 10, submitted=2),  # fits now, but planned behind job 1: 150
            pending(3, 16, 10, submitted=3),  # can never start on an 8-GPU node
            pending(4, 8, 10, submitted=4),  # not held up by job 3: after job 2, at 160
        ),
    )
    found = explain(snapshot, now=10.0, policy=FIFO)
    assert [found[i].position for i in (1, 2, 3, 4)] == [1, 2, 3, 4]
    assert [found[i].estimated_start for i in (1, 2, 3, 4)] == [100.0, 150.0, None, 160.0]
    assert found[1].reason.startswith("waiting for room: needs 8 GPU(s)")
    assert "GPUs are short: at most 4 free on a node it may use" in found[1].reason
    assert found[2].reason.startswith("fits now")
    assert found[3].reason.startswith("can never start here")
    assert "1 job(s) ahead" not in found[1].reason
    assert "3 job(s) ahead" in found[4].reason


def test_an_overdue_running_job_is_expected_to_end_now() -> None:
    snapshot = Snapshot(
        nodes=(NODE,),
        running=(RunningJob(9, "p", {"n1": Resources(8, 1, 1000)}, 0.0, 5.0),),
        pending=(pending(1, 8, 50, submitted=1),),
    )
    assert explain(snapshot, now=60.0, policy=FIFO)[1].estimated_start == 60.0


def test_fairshare_explains_in_its_own_order_with_learned_estimates_and_notes() -> None:
    """p used 3× q's GPU time; its jobs use a tenth of their limits. Order by expected GPU
    time, p's scaled by 2^(1.5−1): job 2 (q, 4 GPUs × 1 h = 4) before job 1 (p, 8 GPUs ×
    0.5 h × 1.41 = 5.7); job 3 has waited past the guard and goes first."""
    history = RuntimeHistory()
    for _ in range(2):
        history.record("", "p", 5 * 3600.0, 0.5 * 3600.0)
        history.record("", "q", 3600.0, 3600.0)
    snapshot = Snapshot(
        nodes=(NODE,),
        running=(RunningJob(9, "p", {"n1": Resources(8, 1, 1000)}, 0.0, 5 * 3600.0),),
        pending=(
            replace(pending(1, 8, 5 * 3600.0, submitted=5000), project="p"),
            replace(pending(2, 4, 3600.0, submitted=5001), project="q"),
            replace(pending(3, 4, 3600.0, submitted=0), project="q"),
        ),
        projects={"p": ProjectView("p", usage=300.0), "q": ProjectView("q", usage=100.0)},
        runtimes=history,
    )
    policy = Policy(fairshare=FairshareKnobs(starvation_after_s=5500.0))
    found = explain(snapshot, now=6000.0, policy=policy)
    assert [found[i].position for i in (3, 2, 1)] == [1, 2, 3]
    assert "starvation guard" in found[3].reason
    assert "over its fair share" in found[1].reason
    # Job 9 is expected to end at 0.5 h (p's tenth of 5 h) — but that is past (now = 6000 s):
    # it has run 6000 s, so it is expected to go on as long again, to 12000 s. Then job 3
    # (1 h by q's history) and job 2 share n1 at 12000; job 1 follows when both end.
    assert found[3].estimated_start == 12000.0
    assert found[2].estimated_start == 12000.0
    assert found[1].estimated_start == 12000.0 + 3600.0


# ---- what is short, named --------------------------------------------------------------------

NL = NodeView("nl", Resources(4, 2, 16_000), "h100", country="NL")
DE = NodeView("de", Resources(4, 2, 16_000), "a100", country="DE")


def busy(node: str, used: Resources) -> RunningJob:
    return RunningJob({"nl": 91, "de": 92}[node], "q", {node: used}, 0.0, 100.0)


def reason(job: PendingJob, *running: RunningJob) -> str:
    snapshot = Snapshot(nodes=(NL, DE), running=running, pending=(job,))
    return explain(snapshot, now=10.0, policy=FIFO)[job.job_id].reason


def a_job(per_node: Resources, **more: object) -> PendingJob:
    return replace(PendingJob(1, "p", 1.0, per_node), **more)  # type: ignore[arg-type]


def test_a_job_short_of_cpu_slots_is_told_so_not_about_free_gpus() -> None:
    """The 8-GPU demo on a 2-core machine: GPUs free, CPU slots not."""
    full = (busy("nl", Resources(0, 2, 1000)), busy("de", Resources(0, 2, 1000)))
    said = reason(a_job(Resources(0, 1, 1024)), *full)
    assert said == (
        "waiting for room: needs 0 GPU(s), 1 CPU(s) and 1024 MB; "
        "CPU slots are short: at most 0 free on a node it may use"
    )


def test_a_job_short_of_memory_is_told_so() -> None:
    taken = (busy("nl", Resources(0, 0, 12_000)), busy("de", Resources(0, 0, 12_000)))
    said = reason(a_job(Resources(1, 1, 8000)), *taken)
    assert "MB of memory are short: at most 4000 free on a node it may use" in said
    assert "GPUs are short" not in said
    assert "CPU slots are short" not in said


def test_a_job_bound_to_its_datas_country_is_told_which_nodes_it_may_use() -> None:
    """Room on the German node does not help a job whose data stays in the Netherlands."""
    said = reason(a_job(Resources(2, 1, 1000), countries=frozenset({"NL"})),
                  busy("nl", Resources(3, 0, 0)))  # fmt: skip
    assert "GPUs are short: at most 1 free on a node it may use" in said
    assert said.endswith(
        "it may use 1 of the facility's 2 nodes (its data may be processed only in NL)"
    )


def test_a_job_for_several_nodes_is_told_how_many_have_room() -> None:
    said = reason(a_job(Resources(2, 1, 1000), nodes=2), busy("de", Resources(3, 0, 0)))
    assert said.startswith("waiting for room: needs 2 nodes, each with 2 GPU(s)")
    assert "GPUs are short: 1 of the 2 nodes it needs have them free" in said


def test_room_split_over_nodes_is_no_room() -> None:
    gpus_here_cpus_there = (busy("nl", Resources(0, 2, 0)), busy("de", Resources(4, 0, 0)))
    said = reason(a_job(Resources(1, 1, 100), gpu_model=None), *gpus_here_cpus_there)
    assert said.endswith("no node it may use has all of it free at once")


def test_why_a_job_can_never_start_names_what_no_node_has() -> None:
    assert reason(a_job(Resources(1, 1, 100), countries=frozenset({"FR"}))) == (
        "can never start here: its data may be processed only in FR, and no node stands there"
    )
    assert reason(a_job(Resources(1, 1, 100), gpu_model="b200")) == (
        "can never start here: no node has GPUs of model b200"
    )
    assert reason(a_job(Resources(1, 1, 100), gpu_model="a100", countries=frozenset({"NL"}))) == (
        "can never start here: no node in NL has GPUs of model a100"
    )
    too_big = reason(a_job(Resources(2, 4, 64_000)))
    assert too_big.startswith("can never start here: needs 2 GPU(s), 4 CPU(s) and 64000 MB")
    assert "CPU slots (the largest has 2)" in too_big
    assert "MB of memory (the largest has 16000)" in too_big


def test_a_job_only_drained_nodes_could_hold_says_which_and_why() -> None:
    h100 = NodeView(
        "gpu-07",
        Resources(8, 32, 64_000),
        "h100",
        schedulable=False,
        out_of_service="drained by olga: PSU swap",
    )
    a100 = NodeView("gpu-01", Resources(8, 32, 64_000), "a100")
    wants = replace(pending(1, 8, 60, submitted=1), gpu_model="h100")
    found = explain(Snapshot(nodes=(h100, a100), pending=(wants,)), now=10.0, policy=FIFO)[1]
    assert found.reason.startswith("waiting for nodes out of service: needs 8 GPU(s) of model")
    assert found.reason.endswith("can hold it: gpu-07 (drained by olga: PSU swap)")
    assert found.estimated_start is None
    too_big = replace(wants, per_node=Resources(16, 1, 1000))  # no node, drained or not
    assert explain(Snapshot(nodes=(h100, a100), pending=(too_big,)), 10.0, FIFO)[
        1
    ].reason.startswith("can never start here")


def test_a_gang_that_must_stay_in_one_block_is_told_what_it_waits_for() -> None:
    # Two blocks of two nodes; one node busy in each: two nodes have room, in two blocks.
    nodes = tuple(
        NodeView(f"n{i}", Resources(8, 32, 64_000), "h100", block=block)
        for i, block in enumerate(["b1", "b1", "b2", "b2"])
    )
    running = tuple(
        RunningJob(i, "p", {node: Resources(8, 1, 1000)}, 0.0, 3600.0)
        for i, node in ((1, "n0"), (2, "n2"))
    )
    gang = PendingJob(9, "p", 0.0, Resources(8, 1, 1000), nodes=2, one_block=True)
    said = explain(Snapshot(nodes, running, (gang,)), 10.0, FIFO)[9]
    assert said.reason == (
        "waiting for 2 nodes with room inside one network block (it asked for one block); "
        "at most 1 have room in any one block now"
    )
    assert said.estimated_start == 3600.0  # when a block is whole again
    spread = explain(Snapshot(nodes, running, (replace(gang, one_block=False),)), 10.0, FIFO)
    assert spread[9].reason.startswith("fits now")
    too_big = explain(Snapshot(nodes, (), (replace(gang, nodes=3),)), 10.0, FIFO)[9]
    assert too_big.reason == (
        "can never start here: it must run inside one network block, and no block has 3 "
        "nodes of its shape (the largest has 2)"
    )
