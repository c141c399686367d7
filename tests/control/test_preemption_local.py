"""Preemption end to end: the control loop with the real local executor, real jobs, and SQLite
and PostgreSQL. A preempted job gets SIGTERM, goes back in line and runs to the end as its
second attempt, even when the control plane is replaced between the intent and the exit."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobState
from aifactory.executors.base import Attempt
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from aifactory.scheduler import Policy, Preempt
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from aifactory.store.jobs import lock_job, request_preemption
from tests.conftest import FakeClock
from tests.control.helpers import PreemptingScheduler, events, job, submit
from tests.executors.conftest import cleanup_jobs
from tests.executors.jobs import RESUMABLE_JOB

pytestmark = pytest.mark.slow
WHY = "reclaimed for project p"


@pytest.fixture
def make_executor(tmp_path: Path) -> Iterator[Callable[[], LocalExecutor]]:
    """Local executors on one jobs dir (a second one plays the restarted control plane)."""
    jobs_dir = tmp_path / "jobs"
    made: list[LocalExecutor] = []

    def make() -> LocalExecutor:
        config = LocalConfig(jobs_dir=jobs_dir, virtual_gpus=4, cpus=4, grace_s=1.0)
        made.append(LocalExecutor(config))
        return made[-1]

    yield make
    cleanup_jobs(jobs_dir)
    for executor in made:
        executor.poll([])  # reaps its exited supervisors


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler() -> PreemptingScheduler:
    return PreemptingScheduler()


@pytest.fixture
def start_loop(
    db: Database,
    make_executor: Callable[[], LocalExecutor],
    clock: FakeClock,
    scheduler: PreemptingScheduler,
) -> Callable[[], ControlLoop]:
    with db.session() as session:
        bootstrap(session, now=clock())

    def start() -> ControlLoop:
        loop = ControlLoop(
            db, make_executor(), Policy(), clock, lease_ttl_s=10, scheduler=scheduler
        )
        assert loop.tick()
        return loop

    return start


def local(loop: ControlLoop) -> LocalExecutor:
    assert isinstance(loop.executor, LocalExecutor)
    return loop.executor


def tick_until(
    loop: ControlLoop, done: Callable[[], bool], what: str, timeout_s: float = 20
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        loop.tick()
        time.sleep(0.05)


def running_victim(db: Database, loop: ControlLoop, clock: FakeClock) -> int:
    """A preemptible job up and running on all four GPUs, another job waiting behind it. It
    notes each attempt in `runs` in its own directory (see runs_of)."""
    command = [sys.executable, "-c", RESUMABLE_JOB, "runs"]
    victim = submit(db, clock(), gpus=4, preemptible=True, command=command)
    log = loop.executor.log_path(victim)

    def up() -> bool:
        return job(db, victim).state == JobState.RUNNING and "up" in log.read_text()

    tick_until(loop, up, "the job to be up")
    clock.advance(1)
    waiting = submit(db, clock(), gpus=4, name="waiting")
    loop.tick()
    assert job(db, waiting).state == JobState.PENDING
    return victim


def runs_of(loop: ControlLoop, job_id: int) -> list[str]:
    return (local(loop).work(job_id) / "runs").read_text().splitlines()


def ended(db: Database, *job_ids: int) -> Callable[[], bool]:
    return lambda: all(job(db, i).ended_at is not None for i in job_ids)


def test_a_preempted_job_gets_sigterm_and_succeeds_as_its_second_attempt(
    db: Database,
    start_loop: Callable[[], ControlLoop],
    clock: FakeClock,
    scheduler: PreemptingScheduler,
    tmp_path: Path,
) -> None:
    loop = start_loop()
    victim = running_victim(db, loop, clock)

    scheduler.queued.append(Preempt(victim, WHY))
    tick_until(loop, ended(db, victim, victim + 1), "both jobs to end")

    done = job(db, victim)
    assert (done.state, done.exit_code, done.attempts) == (JobState.SUCCEEDED, 0, 2)
    assert job(db, victim + 1).state == JobState.SUCCEEDED
    assert runs_of(loop, victim) == ["1", "2"]  # each attempt ran once
    first_log = local(loop).jobdir(Attempt(victim, 1)).log
    assert "got SIGTERM" in first_log.read_text()
    assert local(loop).log_path(victim).read_text() == "resumed from step 7\n"
    assert [(before, after) for before, after, _ in events(db, victim)] == [
        (None, "PENDING"),
        ("PENDING", "ADMITTED"),
        ("ADMITTED", "RUNNING"),
        ("RUNNING", "RUNNING"),  # preemption requested
        ("RUNNING", "PREEMPTED"),
        ("PREEMPTED", "PENDING"),
        ("PENDING", "ADMITTED"),
        ("ADMITTED", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert events(db, victim)[4][2] == f"preempted: {WHY}"


@pytest.mark.parametrize("signalled", [True, False], ids=["exited-unseen", "never-signalled"])
def test_a_new_control_plane_finishes_a_preemption_the_old_one_began_once(
    db: Database,
    start_loop: Callable[[], ControlLoop],
    clock: FakeClock,
    tmp_path: Path,
    signalled: bool,
) -> None:
    """The first control plane dies after committing the intent: before it could signal the
    job, or after, with the job exiting while nobody watched. Its successor ends the attempt
    (if need be), requeues the job exactly once and runs it again."""
    first = start_loop()
    victim = running_victim(db, first, clock)
    with db.session() as session:
        row = lock_job(session, victim)
        assert row is not None
        request_preemption(session, row, WHY, now=clock(), actor="control")
    if signalled:
        first.executor.preempt(Attempt(victim, 1))
        exit_record = local(first).jobdir(Attempt(victim, 1)).exit
        deadline = time.monotonic() + 10
        while not exit_record.exists():
            assert time.monotonic() < deadline, "the preempted attempt did not exit"
            time.sleep(0.05)

    clock.advance(11)  # the dead control plane's lease runs out
    successor = start_loop()
    tick_until(successor, ended(db, victim, victim + 1), "both jobs to end")
    assert first.tick() is False

    moves = [(before, after) for before, after, _ in events(db, victim)]
    assert moves.count(("RUNNING", "PREEMPTED")) == 1
    assert moves.count(("PREEMPTED", "PENDING")) == 1
    assert (job(db, victim).state, job(db, victim).attempts) == (JobState.SUCCEEDED, 2)
    assert runs_of(successor, victim) == ["1", "2"]
