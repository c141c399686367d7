"""The control loop's logic with a scripted executor, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobState
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.jobs import cancel_job
from aifactory.services.tenancy import user_by_name
from aifactory.store import flags
from aifactory.store.db import Database
from aifactory.store.jobs import events_of
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job, submit


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def loop(db: Database, executor: FakeExecutor, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert control.tick()  # registers the node
    return control


def exited(code: int, outcome: Outcome = Outcome.SUCCEEDED) -> Observation:
    return Observation(
        Phase.EXITED,
        started_at=1.0,
        ended_at=2.0,
        exit_code=code,
        outcome=outcome,
        reason=f"exited with code {code}",
    )


def test_admits_names_devices_then_follows_the_executor(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock(), gpus=2)
    loop.tick()
    admitted = job(db, job_id)
    assert admitted.state == JobState.ADMITTED
    assert admitted.placement == {
        "fake-1": {
            "gpus": 2,
            "cpus": 1,
            "memory_mb": 1024,
            "gpu_ids": ["GPU-0", "GPU-1"],
            "cpu_ids": [0],
        }
    }
    assert executor.starts_of(job_id) == 1
    assert executor.started[0].placement["fake-1"].gpu_ids == ["GPU-0", "GPU-1"]

    executor.observations[job_id] = Observation(Phase.RUNNING, started_at=clock())
    loop.tick()
    assert job(db, job_id).state == JobState.RUNNING

    executor.observations[job_id] = exited(0)
    loop.tick()
    done = job(db, job_id)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    with db.read() as session:
        states = [e.to_state for e in events_of(session, job_id)]
    assert states == ["PENDING", "ADMITTED", "RUNNING", "SUCCEEDED"]
    assert executor.starts_of(job_id) == 1


def test_a_job_that_ended_unseen_gets_every_missed_transition(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock())
    loop.tick()
    executor.observations[job_id] = exited(3, Outcome.FAILED)
    loop.tick()
    with db.read() as session:
        states = [e.to_state for e in events_of(session, job_id)]
    assert states == ["PENDING", "ADMITTED", "RUNNING", "FAILED"]
    assert job(db, job_id).exit_code == 3


def test_jobs_wait_for_gpus_and_reuse_the_freed_devices(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    first, second = submit(db, clock(), gpus=8), submit(db, clock() + 1, gpus=8)
    loop.tick()
    assert (job(db, first).state, job(db, second).state) == (JobState.ADMITTED, JobState.PENDING)
    executor.observations[first] = exited(0)
    loop.tick()  # sees the first end ...
    loop.tick()  # ... and admits the second on the freed GPUs
    assert job(db, second).state == JobState.ADMITTED
    assert job(db, second).placement["fake-1"]["gpu_ids"] == [f"GPU-{i}" for i in range(8)]


def test_restart_starts_an_admitted_job_the_executor_never_saw_once(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock())
    loop.tick()
    executor.observations.pop(job_id)  # the crash came between commit and start
    executor.started.clear()
    clock.advance(11)  # the dead loop's lease runs out
    successor = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert successor.tick()
    assert executor.starts_of(job_id) == 1
    successor.tick()
    assert executor.starts_of(job_id) == 1  # STARTING now: not started again


def test_a_second_loop_stands_by_while_the_lease_is_held(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    standby = ControlLoop(db, FakeExecutor(), Policy(), clock, lease_ttl_s=10)
    job_id = submit(db, clock())
    assert standby.tick() is False
    assert job(db, job_id).state == JobState.PENDING
    clock.advance(5)
    loop.tick()  # renews
    clock.advance(6)
    assert standby.tick() is False  # renewed 6 s ago: still held
    clock.advance(11)
    assert standby.tick() is True
    assert loop.tick() is False  # the old holder has lost it and acts no more
    assert standby.epoch == 2


def test_cancel_of_a_running_job_goes_through_the_executor(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock())
    loop.tick()
    executor.observations[job_id] = Observation(Phase.RUNNING, started_at=clock())
    loop.tick()
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        cancel_job(session, admin, job_id, now=clock())
    loop.tick()
    assert executor.cancelled == [job_id]
    assert job(db, job_id).state == JobState.RUNNING  # until the executor says it ended
    executor.observations[job_id] = Observation(
        Phase.EXITED,
        started_at=1.0,
        ended_at=2.0,
        exit_code=-15,
        outcome=Outcome.CANCELLED,
        reason="cancelled at the user's request",
    )
    loop.tick()
    assert job(db, job_id).state == JobState.CANCELLED


def test_cancel_before_the_executor_started_it_never_starts_it(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock())
    loop.tick()
    executor.observations.pop(job_id)
    executor.started.clear()
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        cancel_job(session, admin, job_id, now=clock())
    loop.tick()
    assert executor.started == []
    assert job(db, job_id).state == JobState.CANCELLED


def test_paused_admission_admits_nothing_until_resumed(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    with db.session() as session:
        flags.set_admission_paused(session, True)
    job_id = submit(db, clock())
    loop.tick()
    assert job(db, job_id).state == JobState.PENDING
    with db.session() as session:
        flags.set_admission_paused(session, False)
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED


def test_lost_jobs_fail_with_the_reason(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock())
    loop.tick()
    executor.observations[job_id] = Observation(Phase.LOST, reason="supervisor disappeared")
    loop.tick()
    failed = job(db, job_id)
    assert failed.state == JobState.FAILED
    assert failed.state_reason == "lost: supervisor disappeared"


def test_a_cleanly_stopped_loop_hands_its_lease_over_at_once(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    successor = ControlLoop(db, FakeExecutor(), Policy(), clock, lease_ttl_s=10)
    assert successor.tick() is False
    loop.release()
    assert successor.tick() is True  # no waiting for the 10 s lease to run out
    assert loop.tick() is False
