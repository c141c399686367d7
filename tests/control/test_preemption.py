"""Preemption in the control loop, with a scripted executor, on SQLite and PostgreSQL: intent
first, then the stop; RUNNING → PREEMPTED → PENDING once the executor saw the attempt exit; and
a new attempt after that."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobState
from aifactory.executors.base import Attempt, Observation, Outcome, Phase
from aifactory.scheduler import Policy, Preempt
from aifactory.services.bootstrap import bootstrap
from aifactory.store import flags
from aifactory.store.db import Database
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import PreemptingScheduler, cancel, events, job, submit

WHY = "reclaimed for project p"
RUNNING = Observation(Phase.RUNNING, started_at=1.0)


def exited(outcome: Outcome, code: int | None) -> Observation:
    return Observation(Phase.EXITED, 1.0, 2.0, code, outcome, f"{outcome.value}: said the executor")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def scheduler() -> PreemptingScheduler:
    return PreemptingScheduler()


@pytest.fixture
def loop(
    db: Database, executor: FakeExecutor, clock: FakeClock, scheduler: PreemptingScheduler
) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10, scheduler=scheduler)
    assert control.tick()  # registers the node
    return control


def running_job(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock, **kw: bool
) -> int:
    """A job on all eight GPUs, RUNNING, with a second one waiting behind it (a reason to
    schedule, and so to preempt)."""
    job_id = submit(db, clock(), gpus=8, name="victim", **kw)
    loop.tick()
    executor.observations[job_id] = RUNNING
    clock.advance(1)
    submit(db, clock(), gpus=8, name="waiting")
    loop.tick()
    assert job(db, job_id).state == JobState.RUNNING
    return job_id


def preempt(loop: ControlLoop, scheduler: PreemptingScheduler, job_id: int) -> None:
    scheduler.queued.append(Preempt(job_id, WHY))
    loop.tick()


def test_a_preempted_job_stops_goes_back_in_line_and_runs_again_as_a_new_attempt(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    job_id = running_job(db, loop, executor, clock, preemptible=True)
    submitted_at = job(db, job_id).submitted_at
    preempt(loop, scheduler, job_id)

    asked = job(db, job_id)
    assert asked.state == JobState.RUNNING  # until the executor says it stopped
    assert (asked.preempt_requested_at, asked.preempt_reason) == (clock(), WHY)
    assert events(db, job_id)[-1] == ("RUNNING", "RUNNING", f"preemption requested: {WHY}")
    assert executor.preempted == [Attempt(job_id, 1)]
    loop.tick()  # passed on again, to the same attempt, until it has exited
    assert executor.preempted == [Attempt(job_id, 1)] * 2
    (victim,) = (r for r in scheduler.snapshots[-1].running if r.job_id == job_id)
    assert (victim.preemptible, victim.stopping) == (True, True)

    with db.session() as session:
        flags.set_admission_paused(session, True)  # to look at it while it waits
    executor.observations[job_id] = exited(Outcome.PREEMPTED, -15)
    loop.tick()
    requeued = job(db, job_id)
    assert requeued.state == JobState.PENDING
    assert requeued.state_reason == "requeued after preemption"
    assert requeued.submitted_at == submitted_at  # it keeps its place in line
    assert requeued.placement is None
    assert (requeued.admitted_at, requeued.started_at, requeued.ended_at) == (None, None, None)
    assert (requeued.preempt_requested_at, requeued.preempt_reason) == (None, None)
    assert requeued.attempts == 1

    with db.session() as session:
        flags.set_admission_paused(session, False)
    loop.tick()  # first in line again: admitted as attempt 2
    assert job(db, job_id).attempts == 2
    assert [launch.attempt for launch in executor.started if launch.job_id == job_id] == [
        Attempt(job_id, 1),
        Attempt(job_id, 2),
    ]
    executor.observations[job_id] = exited(Outcome.SUCCEEDED, 0)
    loop.tick()
    assert job(db, job_id).state == JobState.SUCCEEDED
    assert events(db, job_id)[3:] == [
        ("RUNNING", "RUNNING", f"preemption requested: {WHY}"),
        ("RUNNING", "PREEMPTED", f"preempted: {WHY}"),
        ("PREEMPTED", "PENDING", "requeued after preemption"),
        ("PENDING", "ADMITTED", "admitted"),
        ("ADMITTED", "RUNNING", "started"),
        ("RUNNING", "SUCCEEDED", "succeeded: said the executor"),
    ]


def test_a_preempt_of_a_job_that_may_not_be_preempted_is_ignored(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    job_id = running_job(db, loop, executor, clock, preemptible=False)
    waiting = job_id + 1
    before = events(db, job_id)
    scheduler.queued += [Preempt(job_id, WHY), Preempt(waiting, WHY), Preempt(404, WHY)]
    assert loop.tick()

    assert executor.preempted == []
    kept = job(db, job_id)
    assert (kept.state, kept.preempt_requested_at) == (JobState.RUNNING, None)
    assert events(db, job_id) == before
    assert job(db, waiting).state == JobState.PENDING  # not running: nothing to preempt


def test_a_second_preempt_of_the_same_job_asks_nothing_new(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    job_id = running_job(db, loop, executor, clock, preemptible=True)
    preempt(loop, scheduler, job_id)
    asked_at = job(db, job_id).preempt_requested_at
    clock.advance(1)
    preempt(loop, scheduler, job_id)
    assert job(db, job_id).preempt_requested_at == asked_at
    assert [e for e in events(db, job_id) if e[0] == e[1]] == [
        ("RUNNING", "RUNNING", f"preemption requested: {WHY}")
    ]


def test_a_cancel_wins_over_a_preemption(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    job_id = running_job(db, loop, executor, clock, preemptible=True)
    preempt(loop, scheduler, job_id)
    cancel(db, job_id, clock())
    executor.calls.clear()
    loop.tick()
    assert executor.calls == [("cancel", Attempt(job_id, 1))]  # no more preempting

    executor.observations[job_id] = exited(Outcome.PREEMPTED, -15)  # the preemption got there
    loop.tick()
    ended = job(db, job_id)
    assert ended.state == JobState.CANCELLED
    assert ended.state_reason == "cancelled while it was being preempted"
    assert ended.attempts == 1
    assert "PENDING" not in [to for _, to, _ in events(db, job_id)[1:]]


def test_a_preempted_job_the_executor_never_saw_is_stopped_before_it_could_run(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    """The executor lost attempt 1 before it started (a crash of the control plane between
    spawning its supervisor and the supervisor taking the attempt's lock). It is started with
    the preemption told first, so whichever start wins the lock records 'preempted before it
    started' and nothing runs."""
    job_id = submit(db, clock(), gpus=8, preemptible=True)
    submit(db, clock() + 1, gpus=8)
    loop.tick()
    preempt(loop, scheduler, job_id)
    executor.observations.pop(job_id)
    executor.calls.clear()
    loop.tick()
    attempt = Attempt(job_id, 1)
    assert executor.calls == [("preempt", attempt), ("start", attempt)]

    executor.observations[job_id] = exited(Outcome.PREEMPTED, None)
    with db.session() as session:
        flags.set_admission_paused(session, True)
    loop.tick()
    assert job(db, job_id).state == JobState.PENDING
    assert events(db, job_id)[-1] == (
        "ADMITTED",
        "PENDING",
        f"preempted before it started: {WHY}",
    )


@pytest.mark.parametrize("signalled", [True, False], ids=["after-signal", "before-signal"])
def test_a_restart_between_the_intent_and_the_exit_requeues_the_job_once(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
    signalled: bool,
) -> None:
    job_id = running_job(db, loop, executor, clock, preemptible=True)
    preempt(loop, scheduler, job_id)  # the intent is committed, the executor asked ...
    if not signalled:
        executor.preempted.clear()  # ... or the crash came between the commit and the signal
    clock.advance(11)  # the dead loop's lease runs out
    successor = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10, scheduler=scheduler)
    executor.preempted.clear()
    assert successor.tick()
    assert executor.preempted == [Attempt(job_id, 1)]  # the successor passes the intent on

    executor.observations[job_id] = exited(Outcome.PREEMPTED, -15)
    with db.session() as session:
        flags.set_admission_paused(session, True)
    successor.tick()
    assert loop.tick() is False  # the old loop acts no more
    successor.tick()
    assert job(db, job_id).state == JobState.PENDING
    moves = [(before, after) for before, after, _ in events(db, job_id)]
    assert moves.count(("RUNNING", "PREEMPTED")) == 1
    assert moves.count(("PREEMPTED", "PENDING")) == 1
    assert moves[-2:] == [("RUNNING", "PREEMPTED"), ("PREEMPTED", "PENDING")]


def test_the_snapshot_shows_who_runs_what_and_what_is_stopping(
    db: Database,
    loop: ControlLoop,
    executor: FakeExecutor,
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> None:
    victim = running_job(db, loop, executor, clock, preemptible=True)
    (seen,) = scheduler.snapshots[-1].running
    assert (seen.preemptible, seen.stopping) == (True, False)
    assert seen.user == str(job(db, victim).user_id)
    (waiting,) = scheduler.snapshots[-1].pending
    assert waiting.user == seen.user
    cancel(db, victim, clock())
    loop.tick()
    (seen,) = scheduler.snapshots[-1].running
    assert seen.stopping  # cancelled: its GPUs free up soon too
