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
    assert "the emptiest node has 4 GPU(s) free" in found[1].reason
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
