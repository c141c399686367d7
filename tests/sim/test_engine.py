"""The simulator on tiny hand-made traces with hand-computed outcomes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifactory.scheduler import Policy, Snapshot, schedule
from aifactory.scheduler.decisions import Decision
from aifactory.sim.engine import Simulator, cluster
from aifactory.sim.metrics import summarise
from aifactory.sim.replay import POLICIES
from aifactory.sim.traces import TraceJob

# One 8-GPU node. A holds 4 GPUs for 100 s; B wants all 8; C wants 4 for 30 s (limit 60 s).
JOBS = [
    TraceJob(1, submit=0, duration=100, gpus=4, time_limit=100, project="a"),
    TraceJob(2, submit=1, duration=50, gpus=8, time_limit=50, project="b"),
    TraceJob(3, submit=2, duration=30, gpus=4, time_limit=60, project="c"),
]


def run(policy: str, jobs: list[TraceJob] = JOBS) -> dict[int, tuple[float, float]]:
    result = Simulator(jobs, cluster([8]), POLICIES[policy], schedule).run()
    return {f.job.job_id: (f.start, f.end) for f in result.finished}


def test_fifo_blocks_behind_the_head() -> None:
    assert run("fifo") == {1: (0, 100), 2: (100, 150), 3: (150, 180)}


def test_easy_backfills_a_job_that_ends_before_the_heads_reservation() -> None:
    assert run("easy") == {1: (0, 100), 2: (100, 150), 3: (2, 32)}


def test_easy_refuses_a_backfill_that_would_delay_the_head() -> None:
    long_c = [*JOBS[:2], replace(JOBS[2], time_limit=200)]  # might run to 202 > 100
    assert run("easy", long_c) == {1: (0, 100), 2: (100, 150), 3: (150, 180)}


def test_a_job_past_its_limit_is_ended_at_the_limit() -> None:
    overrun = [TraceJob(1, submit=0, duration=500, gpus=1, time_limit=60)]
    assert run("easy", overrun) == {1: (0, 60)}


def test_figures_follow_from_the_schedule() -> None:
    result = Simulator(JOBS, cluster([8]), POLICIES["easy"], schedule).run()
    figures = summarise(result)
    waits = [0, 99, 0]
    assert figures["avg_wait"] == pytest.approx(sum(waits) / 3)
    assert figures["makespan"] == 150
    busy = 100 * 4 + 50 * 8 + 30 * 4
    assert figures["utilisation"] == pytest.approx(busy / (8 * 150))
    jcts = [100, 149, 30]
    assert figures["avg_jct"] == pytest.approx(sum(jcts) / 3)
    assert figures["avg_bsld"] == pytest.approx((1 + 149 / 50 + 1) / 3)
    assert figures["worst_tenant_wait_ratio"] == pytest.approx(99 / 33)


def test_a_job_that_can_never_fit_is_reported_unfinished_not_lost() -> None:
    jobs = [*JOBS, TraceJob(4, submit=3, duration=10, gpus=16, nodes=1, time_limit=10)]
    result = Simulator(jobs, cluster([8]), POLICIES["easy"], schedule).run()
    assert result.unfinished == 1
    assert {f.job.job_id for f in result.finished} == {1, 2, 3}


def test_the_scheduler_never_sees_true_runtimes() -> None:
    """Two traces that differ only in true durations get the same first decisions."""
    seen: list[list[Decision]] = []

    def spy(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
        decisions = schedule(snapshot, policy, now)
        seen.append(decisions)
        return decisions

    for factor in (1.0, 0.1):
        jobs = [replace(j, duration=j.duration * factor) for j in JOBS]
        seen.clear()
        Simulator(jobs, cluster([8]), POLICIES["easy"], spy).run()
        first_calls = seen[:3]
        if factor == 1.0:
            expected = first_calls
    assert first_calls == expected


def test_the_free_capacity_the_simulator_keeps_always_matches_a_recount() -> None:
    """The engine hands the scheduler its own running tally of free capacity; check it."""
    from aifactory.sim.scenarios import workload

    checked = []

    def checking(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
        assert snapshot.free is not None
        assert dict(snapshot.free) == snapshot.count_free()
        checked.append(now)
        return schedule(snapshot, policy, now)

    work = workload("itp-cluster04", jobs=400)
    Simulator(work.jobs, work.nodes, POLICIES["easy"], checking).run()
    assert len(checked) > 100


# One project, one 8-GPU node. J1 holds it until 100. J2 asks 400 s but runs 20; J3 asks 60 s
# and runs 50. At 100 both wait.
SHORTEST_FIRST = [
    TraceJob(1, submit=0, duration=100, gpus=8, time_limit=100, project="a"),
    TraceJob(2, submit=1, duration=20, gpus=8, time_limit=400, project="a"),
    TraceJob(3, submit=2, duration=50, gpus=8, time_limit=60, project="a"),
]


def test_slurm_orders_one_projects_jobs_by_age() -> None:
    """Same fair-share and size factors: the older J2 has the higher priority."""
    assert run("slurm", SHORTEST_FIRST) == {1: (0, 100), 2: (100, 120), 3: (120, 170)}


def test_fairshare_runs_the_job_expected_to_be_smaller_first() -> None:
    """J1 used all of its limit, so history expects J2 to take 400 s and J3 60 s: J3 first."""
    assert run("fairshare", SHORTEST_FIRST) == {1: (0, 100), 3: (100, 150), 2: (150, 170)}


def test_oracle_knows_j2_is_really_the_shorter() -> None:
    assert run("oracle", SHORTEST_FIRST) == {1: (0, 100), 2: (100, 120), 3: (120, 170)}


def test_a_guaranteed_quota_is_reclaimed_from_a_preemptible_borrower() -> None:
    """b borrows the node (no quota) with a preemptible job; q's in-quota job arrives at 10.
    The borrower is preempted, stops after the 60 s grace, and q's job starts at once; the
    borrower starts over when q's job ends and loses 8 GPUs × 70 s of work."""
    jobs = [
        TraceJob(1, 0, duration=1000, gpus=8, time_limit=2000, project="b", preemptible=True),
        TraceJob(2, 10, duration=100, gpus=8, time_limit=200, project="q"),
    ]
    result = Simulator(jobs, cluster([8]), POLICIES["fairshare"], schedule, quotas={"q": 8}).run()
    assert {f.job.job_id: (f.start, f.end) for f in result.finished} == {
        2: (70, 170),
        1: (170, 1170),
    }
    figures = summarise(result)
    assert figures["preemptions"] == 1
    assert figures["lost_gpu_hours"] == pytest.approx(8 * 70 / 3600)
