"""Golden tests for `fairshare`, outcomes computed by hand. Nodes have 8 GPUs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifactory.scheduler import Policy, Preempt, Snapshot, Start, policy_named, schedule
from aifactory.scheduler.estimates import RuntimeHistory, expected_end
from aifactory.scheduler.fairshare import FairshareKnobs
from aifactory.scheduler.snapshot import ProjectView, RunningJob
from tests.scheduler.builders import a_job, a_node, running, snapshot, started_gpus

FAIRSHARE = Policy(name="fairshare")
HOUR = 3600.0


def _projects(snap: Snapshot, **views: ProjectView) -> Snapshot:
    return replace(snap, projects={name: replace(v, name=name) for name, v in views.items()})


def _preemptible(job: RunningJob, user: str = "") -> RunningJob:
    return replace(job, preemptible=True, user=user)


# ---- order --------------------------------------------------------------------------------
def test_smaller_expected_gpu_time_goes_first() -> None:
    """Room for one 8-GPU job: 2 (8 GPUs × 1 h) beats 1 (8 GPUs × 4 h) though 1 came first."""
    snap = snapshot(
        [a_node("n1")], pending=[a_job(1).gpus(8).limit(4 * HOUR), a_job(2).gpus(8).limit(HOUR)]
    )
    assert started_gpus(schedule(snap, FAIRSHARE, 10.0)) == [(2, {"n1": 8})]


def test_history_teaches_that_a_long_limit_means_a_short_job() -> None:
    """p's last jobs used a tenth of their 10 h limits: its new 10 h job is expected to take
    1 h, and goes before the 2 h job of q, whose jobs use all of their limits."""
    history = RuntimeHistory()
    for _ in range(2):
        history.record("u", "p", 10 * HOUR, HOUR)
        history.record("u", "q", 2 * HOUR, 2 * HOUR)
    snap = snapshot(
        [a_node("n1")],
        pending=[a_job(1, "q").gpus(8).limit(2 * HOUR), a_job(2, "p").gpus(8).limit(10 * HOUR)],
    )
    snap = replace(snap, pending=tuple(replace(j, user="u") for j in snap.pending))
    snap = replace(snap, runtimes=history)
    assert history.runtime(snap.pending[1]) == pytest.approx(HOUR)
    assert started_gpus(schedule(snap, FAIRSHARE, 10.0)) == [(2, {"n1": 8})]


def test_a_project_over_its_share_waits_behind_one_under_it() -> None:
    """Same jobs; p used 3× what q used (equal shares), so p's job counts 2^(1.5−1) = 1.41×
    its size (and q's 2^(0.5−1) = 0.71×): q's goes first."""
    snap = snapshot([a_node("n1")], pending=[a_job(1, "p").gpus(8), a_job(2, "q").gpus(8)])
    snap = _projects(snap, p=ProjectView("", usage=300.0), q=ProjectView("", usage=100.0))
    assert started_gpus(schedule(snap, FAIRSHARE, 10.0)) == [(2, {"n1": 8})]


# ---- backfill with estimates ----------------------------------------------------------------
def test_backfill_trusts_learned_estimates_of_running_jobs() -> None:
    """n1 runs p's job (limit 10 h, p's jobs use a tenth: expected end 1 h). In order:
    job 1 (8 GPUs × 12 min = 1.6 GPU-h) is blocked and reserves n1 at 1 h; job 3 (2 GPUs ×
    54 min = 1.8 GPU-h, by q's quarter-of-limit history) ends before that and backfills; job 2
    (2 GPUs × 2 h) fits now too but would still run at 1 h: it waits."""
    history = RuntimeHistory()
    for _ in range(2):
        history.record("", "p", 10 * HOUR, HOUR)
        history.record("", "q", 4 * HOUR, HOUR)
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 6}, started_at=0, limit=10 * HOUR, project="p")],
        pending=[
            a_job(1, "p").gpus(8).limit(2 * HOUR),
            a_job(2, "q").gpus(2).limit(8 * HOUR),
            a_job(3, "q").gpus(2).limit(3.6 * HOUR),
        ],
    )
    snap = replace(snap, runtimes=history)
    assert expected_end(snap.running[0], 10.0, history) == pytest.approx(HOUR)
    assert started_gpus(schedule(snap, FAIRSHARE, 10.0)) == [(3, {"n1": 2})]


def test_a_job_that_outlived_its_estimate_is_expected_to_run_as_long_again() -> None:
    history = RuntimeHistory()
    history.record("", "p", 10 * HOUR, HOUR)
    job = running(100, {"n1": 8}, started_at=0, limit=10 * HOUR, project="p")
    assert expected_end(job, 0.5 * HOUR, history) == pytest.approx(HOUR)
    assert expected_end(job, 3 * HOUR, history) == pytest.approx(6 * HOUR)
    assert expected_end(job, 8 * HOUR, history) == pytest.approx(10 * HOUR)  # never past limit


# ---- starvation guard -------------------------------------------------------------------------
def test_a_starving_job_goes_first_and_holds_a_hard_reservation() -> None:
    """Job 1 (8 GPUs, 10 h) has waited past the guard. The running job outlived its 22.5 min
    estimate (an eighth of its 3 h limit): it is expected to end at 3 h, where job 1 reserves
    n1. Job 2 (estimated 15 min, limit 2 h) would fit the 1.5 h gap by its estimate, but not by
    its limit: before a starving job's reservation only limits count. A 1-minute job may go."""
    knobs = FairshareKnobs(starvation_after_s=HOUR)
    policy = Policy(name="fairshare", fairshare=knobs)
    history = RuntimeHistory()
    for _ in range(2):
        history.record("", "q", 2 * HOUR, 0.125 * 2 * HOUR)
    snap = snapshot(
        [a_node("n1")],
        running=[running(100, {"n1": 4}, started_at=0, limit=3 * HOUR)],
        pending=[
            a_job(1, "p").gpus(8).limit(10 * HOUR).submitted(0),
            a_job(2, "q").gpus(2).limit(2 * HOUR).submitted(100),
        ],
    )
    snap = replace(snap, runtimes=history)
    now = 1.5 * HOUR  # job 1 waited 1.5 h: starving
    assert expected_end(snap.running[0], now, history) == pytest.approx(3 * HOUR)
    assert schedule(snap, policy, now) == []
    short = replace(snap, pending=(*snap.pending, a_job(3, "q").gpus(2).limit(60).build()))
    assert started_gpus(schedule(short, policy, now)) == [(3, {"n1": 2})]


def test_by_default_a_job_starves_after_three_days() -> None:
    """Room for one 8-GPU job. After two days job 1 (8 GPUs × 10 h) still yields to the smaller
    job 2; after three it starves and goes first (72 h: docs/scheduler.md, the family)."""
    snap = snapshot(
        [a_node("n1")],
        pending=[
            a_job(1, "p").gpus(8).limit(10 * HOUR).submitted(0),
            a_job(2, "q").gpus(8).limit(HOUR).submitted(0),
        ],
    )
    assert started_gpus(schedule(snap, FAIRSHARE, 48 * HOUR)) == [(2, {"n1": 8})]
    assert started_gpus(schedule(snap, FAIRSHARE, 72 * HOUR)) == [(1, {"n1": 8})]


def test_only_the_first_starving_jobs_hold_promises() -> None:
    """One promise at most (and no soft reservation): starving job 1 holds n1 from the running
    job's limit (2 h); starving job 2 holds none, so a long small job may start on n2 now.
    Without the cap job 2's promise would hold n2 from 2.5 h and the small job could not start
    at all."""
    nodes = [a_node("n1"), a_node("n2")]
    busy = [
        running(100, {"n1": 4}, started_at=0, limit=2 * HOUR),
        running(101, {"n2": 4}, started_at=0, limit=2.5 * HOUR),
    ]
    starving = [a_job(i, "p").gpus(8).limit(HOUR).submitted(i) for i in (1, 2)]
    small = a_job(3, "q").gpus(2).limit(10 * HOUR).submitted(2 * HOUR)
    snap = snapshot(nodes, running=busy, pending=[*starving, small])
    now, knobs = 1.5 * HOUR, FairshareKnobs(starvation_after_s=HOUR, reservations=0)
    capped = Policy(name="fairshare", fairshare=replace(knobs, promises=1))
    assert started_gpus(schedule(snap, capped, now)) == [(3, {"n2": 2})]
    assert schedule(snap, Policy(name="fairshare", fairshare=knobs), now) == []


# ---- quotas: reclaim by preemption ----------------------------------------------------------
def test_in_quota_job_preempts_the_newest_borrower() -> None:
    """q is guaranteed 8 GPUs and holds none; b (no quota) borrows the whole node with two
    preemptible 4-GPU jobs. q's 4-GPU job takes back the newer one's room, nothing more."""
    snap = snapshot(
        [a_node("n1")],
        running=[
            _preemptible(running(100, {"n1": 4}, started_at=0, project="b")),
            _preemptible(running(101, {"n1": 4}, started_at=50, project="b")),
        ],
        pending=[a_job(1, "q").gpus(4)],
    )
    snap = _projects(snap, q=ProjectView("", quota_gpus=8))
    assert schedule(snap, FAIRSHARE, 100.0) == [Preempt(101, "reclaimed for project q")]


def test_the_room_being_freed_is_kept_for_the_reclaiming_job() -> None:
    """Next round: 101 is stopping. Nothing is preempted again and job 2 (another project's,
    smaller) may not take the room; once 101 is gone q's job starts."""
    stopping = replace(running(101, {"n1": 4}, started_at=50, project="b"), stopping=True)
    borrower = _preemptible(running(100, {"n1": 4}, started_at=0, project="b"))
    snap = snapshot(
        [a_node("n1")],
        running=[borrower, replace(stopping, preemptible=True)],
        pending=[a_job(1, "q").gpus(4), a_job(2, "r").gpus(1).limit(60)],
    )
    snap = _projects(snap, q=ProjectView("", quota_gpus=8))
    assert schedule(snap, FAIRSHARE, 110.0) == []
    gone = replace(snap, running=(borrower,))
    assert started_gpus(schedule(gone, FAIRSHARE, 170.0)) == [(1, {"n1": 4})]


def test_non_preemptible_and_in_quota_jobs_are_never_preempted() -> None:
    snap = snapshot(
        [a_node("n1")],
        running=[
            running(100, {"n1": 4}, project="b"),  # not preemptible
            _preemptible(running(101, {"n1": 4}, project="c")),  # within c's own quota
        ],
        pending=[a_job(1, "q").gpus(8)],
    )
    snap = _projects(snap, q=ProjectView("", quota_gpus=8), c=ProjectView("", quota_gpus=4))
    assert schedule(snap, FAIRSHARE, 100.0) == []


def test_a_job_beyond_its_projects_quota_preempts_nothing() -> None:
    snap = snapshot(
        [a_node("n1")],
        running=[_preemptible(running(100, {"n1": 8}, project="b"))],
        pending=[a_job(1, "q").gpus(8)],
    )
    snap = _projects(snap, q=ProjectView("", quota_gpus=4))
    assert schedule(snap, FAIRSHARE, 100.0) == []


def test_no_preemption_when_even_all_borrowed_room_would_not_do() -> None:
    """q's 8-GPU job needs a whole node; the only borrower holds 4 of n1's GPUs and the other
    4 run a non-preemptible job: preempting would waste work and still not make room."""
    snap = snapshot(
        [a_node("n1")],
        running=[
            _preemptible(running(100, {"n1": 4}, project="b")),
            running(101, {"n1": 4}, project="c"),
        ],
        pending=[a_job(1, "q").gpus(8)],
    )
    snap = _projects(snap, q=ProjectView("", quota_gpus=8))
    assert schedule(snap, FAIRSHARE, 100.0) == []


# ---- the live policy set ----------------------------------------------------------------------
def test_oracle_cannot_be_configured_on_a_live_facility() -> None:
    with pytest.raises(ValueError, match="only in the simulator"):
        policy_named("oracle")
    assert policy_named("fairshare") == FAIRSHARE


def test_decisions_are_starts_in_queue_order_with_gangs_whole() -> None:
    snap = snapshot(
        [a_node("n1"), a_node("n2"), a_node("n3")],
        pending=[a_job(1).gpus(8).nodes(2), a_job(2).gpus(4)],
    )
    decisions = schedule(snap, FAIRSHARE, 0.0)
    assert all(isinstance(d, Start) for d in decisions)
    # Job 2 (4 GPU-h) before job 1 (16 GPU-h); best fit puts 2 on n1, the gang on n2 + n3.
    assert started_gpus(decisions) == [(2, {"n1": 4}), (1, {"n2": 8, "n3": 8})]
