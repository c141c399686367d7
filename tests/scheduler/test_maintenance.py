"""Maintenance windows in every policy: nothing starts that would run into one, short work is
backfilled up to it, and the estimates and reasons say so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifactory.domain.resources import Resources
from aifactory.scheduler import NAMED, NodeView, PendingJob, Policy, RunningJob, Snapshot, Start
from aifactory.scheduler import schedule as run_policy
from aifactory.scheduler.explain import explain
from aifactory.scheduler.maintenance import Window, barred, by_node, next_begin
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.scheduler.profile import NodePlan
from aifactory.scheduler.snapshot import ProjectView

HOUR = 3600.0
NODES = (
    NodeView("n1", Resources(8, 32, 64_000), "h100"),
    NodeView("n2", Resources(8, 32, 64_000), "h100"),
)
POLICIES = [*NAMED.values(), *SIM_ONLY.values()]
# n1 is serviced from 2 h to 4 h from now (now = 0).
WINDOW = Window(frozenset({"n1"}), 2 * HOUR, 4 * HOUR, "firmware update", 7)


def job(job_id: int, gpus: int, limit: float, project: str = "p") -> PendingJob:
    return PendingJob(job_id, project, 0.0, Resources(gpus, 1, 1000), time_limit_s=limit)


def started(snapshot: Snapshot, policy: Policy) -> dict[int, set[str]]:
    return {
        d.job_id: set(d.placement)
        for d in run_policy(snapshot, policy, 0.0)
        if isinstance(d, Start)
    }


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name + ("" if p.backfill else "-nb"))
def test_a_job_that_would_run_into_the_window_does_not_start_on_its_nodes(policy: Policy) -> None:
    # n2 is full for 10 h; a 3-hour job fits only n1's room, but would run into the window.
    busy = RunningJob(1, "q", {"n2": Resources(8, 1, 1000)}, 0.0, 10 * HOUR)
    snapshot = Snapshot(
        NODES, running=(busy,), pending=(job(2, 8, 3 * HOUR),), maintenance=(WINDOW,)
    )
    assert started(snapshot, policy) == {}
    without = Snapshot(NODES, running=(busy,), pending=(job(2, 8, 3 * HOUR),))
    assert started(without, policy) == {2: {"n1"}}  # the same job, windows aside, starts


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name + ("" if p.backfill else "-nb"))
def test_short_work_is_backfilled_up_to_the_window(policy: Policy) -> None:
    busy = RunningJob(1, "q", {"n2": Resources(8, 1, 1000)}, 0.0, 10 * HOUR)
    snapshot = Snapshot(
        NODES, running=(busy,), pending=(job(2, 8, 2 * HOUR),), maintenance=(WINDOW,)
    )
    assert started(snapshot, policy) == {2: {"n1"}}  # ends by its limit as the window begins


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name + ("" if p.backfill else "-nb"))
def test_nothing_starts_during_a_window_and_gangs_avoid_it(policy: Policy) -> None:
    assert started(Snapshot(NODES, pending=(gang(2),)), policy) == {2: {"n1", "n2"}}
    during = Window(frozenset({"n1"}), -HOUR, HOUR, "repair", 1)
    snapshot = Snapshot(NODES, pending=(gang(2), job(3, 1, 60.0)), maintenance=(during,))
    # The gang waits for the window's end; without backfill, so does everything behind it.
    assert started(snapshot, policy) == ({3: {"n2"}} if policy.backfill else {})


def gang(job_id: int) -> PendingJob:
    return PendingJob(job_id, "p", 0.0, Resources(8, 1, 1000), nodes=2, time_limit_s=HOUR)


def test_a_reclaimed_quota_does_not_land_in_a_window() -> None:
    # Project q holds n1 and n2 with preemptible borrowed jobs; p's quota of 8 is reclaimed,
    # but not on n1 (where the least work would be lost), whose window its 3-hour job would
    # run into.
    running = (
        RunningJob(1, "q", {"n1": Resources(8, 1, 1000)}, 60.0, 10 * HOUR, preemptible=True),
        RunningJob(2, "q", {"n2": Resources(8, 1, 1000)}, 0.0, 10 * HOUR, preemptible=True),
    )
    projects = {"p": ProjectView("p", quota_gpus=8), "q": ProjectView("q")}
    snapshot = Snapshot(
        NODES, running, (job(3, 8, 3 * HOUR),), projects=projects, maintenance=(WINDOW,)
    )

    def preempted(snapshot: Snapshot) -> list[int]:
        return [d.job_id for d in run_policy(snapshot, NAMED["fairshare"], 100.0)]

    assert preempted(snapshot) == [2]
    assert preempted(replace(snapshot, maintenance=())) == [1]


def test_the_estimate_moves_past_the_window_and_the_reason_names_it() -> None:
    busy = RunningJob(1, "q", {"n2": Resources(8, 1, 1000)}, 0.0, 10 * HOUR)
    snapshot = Snapshot(
        NODES, running=(busy,), pending=(job(2, 8, 3 * HOUR),), maintenance=(WINDOW,)
    )
    found = explain(snapshot, 0.0, Policy(name="fifo"))[2]
    assert found.estimated_start == 4 * HOUR  # after the window, not now
    assert "maintenance begins at 1970-01-01 02:00 UTC" in found.reason
    assert "(firmware update)" in found.reason
    assert "3 h" in found.reason
    assert (
        explain(Snapshot(NODES, running=(busy,), pending=(job(2, 8, 3 * HOUR),)), 0.0)[
            2
        ].estimated_start
        == 0.0
    )


def test_windows_merge_per_node_and_bar_only_clashing_jobs() -> None:
    other = Window(frozenset({"n1", "n2"}), 3 * HOUR, 5 * HOUR, "", 8)
    spans = by_node([WINDOW, other], ["n1", "n2", "n3"])
    assert spans == {"n1": [(2 * HOUR, 5 * HOUR)], "n2": [(3 * HOUR, 5 * HOUR)]}
    assert next_begin(spans["n1"], 0.0) == 2 * HOUR
    assert next_begin(spans["n1"], 6 * HOUR) == float("inf")
    assert barred([WINDOW, other], 0.0, 2 * HOUR) == frozenset()
    assert barred([WINDOW, other], 0.0, 2.5 * HOUR) == {"n1"}
    assert barred([WINDOW, other], 5 * HOUR, 10 * HOUR) == frozenset()


@pytest.mark.parametrize("name", ["slurm", "fairshare"])
def test_a_gang_keeps_its_reservation_when_one_of_its_nodes_has_a_window(name: str) -> None:
    # n2 is busy until 150 s; n1 is serviced from 100 s to 200 s: the 2-node gang can start at
    # 200 s at the earliest, and a long job must not take n2's room in front of it.
    busy = RunningJob(1, "q", {"n2": Resources(4, 1, 1000)}, 0.0, 150.0)
    gang_job = PendingJob(2, "p", -10.0, Resources(8, 1, 1000), nodes=2, time_limit_s=60.0)
    long = PendingJob(3, "p", 0.0, Resources(4, 1, 1000), time_limit_s=10_000.0)
    window = Window(frozenset({"n1"}), 100.0, 200.0, "fw", 1)
    snapshot = Snapshot(NODES, running=(busy,), pending=(gang_job, long), maintenance=(window,))
    plan = NodePlan(snapshot, 0.0, lambda run: run.started_at + run.time_limit_s)
    slot = plan.earliest(gang_job, 60.0)
    assert slot is not None
    assert slot.start_at == 200.0
    assert run_policy(snapshot, NAMED[name], 0.0) == []  # the long job would delay the gang


def test_the_reason_names_the_window_on_the_nodes_the_job_may_use() -> None:
    nodes = (
        NodeView("h1", Resources(8, 32, 64_000), "h100"),
        NodeView("a1", Resources(8, 32, 64_000), "a100"),
    )
    wants_h100 = PendingJob(
        1, "p", 0.0, Resources(8, 1, 1000), gpu_model="h100", time_limit_s=3 * HOUR
    )
    windows = (
        Window(frozenset({"a1"}), -HOUR, 30 * HOUR, "a100 rack rewiring", 1),
        Window(frozenset({"h1"}), 2 * HOUR, 4 * HOUR, "h100 firmware", 2),
    )
    found = explain(Snapshot(nodes, pending=(wants_h100,), maintenance=windows), 0.0)[1]
    assert "(h100 firmware)" in found.reason
    assert found.estimated_start == 4 * HOUR
