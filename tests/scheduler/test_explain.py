"""Pending-job explanations and start estimates on a hand-made facility."""

from __future__ import annotations

from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, RunningJob, Snapshot
from aifactory.scheduler.explain import explain

NODE = NodeView("n1", Resources(8, 32, 64_000), "h100")


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
    found = explain(snapshot, now=10.0)
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
    assert explain(snapshot, now=60.0)[1].estimated_start == 60.0
