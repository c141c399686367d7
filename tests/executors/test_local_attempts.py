"""Preemption and attempts on the local executor, with real supervisors and real jobs: a
preempted attempt is stopped like a cancelled one but recorded as preempted; a job runs again
only as a new attempt, and no attempt ever runs twice."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.local.executor import LocalExecutor
from tests.executors.conftest import gone, supervisors_under, wait_gone
from tests.executors.jobs import (
    RESUMABLE_JOB,
    at,
    launch,
    own_dir,
    python,
    run_to_exit,
    seen,
    started_pid,
    wait_for_file,
    wait_phase,
)


def test_preempt_stops_a_running_attempt_with_sigterm(executor: LocalExecutor) -> None:
    executor.start(launch(1, ["sh", "-c", "echo up; exec sleep 30"]))
    wait_phase(executor, 1, (Phase.RUNNING,))
    wait_for_file(executor.log_path(1))

    executor.preempt(at(1))
    observation = wait_phase(executor, 1)

    assert observation.outcome is Outcome.PREEMPTED
    assert observation.exit_code == 128 + signal.SIGTERM
    assert observation.reason == "preempted: stopped to make room; it will run again"
    assert "preempted" in executor.log_path(1).read_text()
    assert gone(started_pid(executor, 1))


def test_preempt_before_start_means_it_never_runs(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    executor.preempt(at(1))
    assert seen(executor, 1).phase is Phase.NOT_STARTED

    observation = run_to_exit(executor, launch(1, ["touch", str(marker)]))

    assert observation.outcome is Outcome.PREEMPTED
    assert observation.exit_code is None
    assert observation.reason == "preempted before it started"
    assert not marker.exists()


def test_a_cancel_wins_over_a_preemption(executor: LocalExecutor) -> None:
    executor.preempt(at(1))
    executor.cancel(at(1))

    observation = run_to_exit(executor, launch(1, ["true"]))

    assert observation.outcome is Outcome.CANCELLED


def test_a_requeued_job_runs_again_as_a_new_attempt_and_no_attempt_twice(
    make_executor: Callable[..., LocalExecutor], jobs_dir: Path, tmp_path: Path
) -> None:
    executor = make_executor()
    runs = executor.work(1) / "runs"  # in the job's own directory, kept across attempts
    first, second = (launch(1, [*python(RESUMABLE_JOB), str(runs)], attempt=n) for n in (1, 2))
    executor.start(first)
    wait_phase(executor, 1, (Phase.RUNNING,))
    wait_for_file(executor.log_path(1))
    executor.preempt(at(1))
    stopped = wait_phase(executor, 1)
    assert (stopped.outcome, stopped.exit_code) == (Outcome.PREEMPTED, 143)

    ended = run_to_exit(executor, second)
    assert ended.outcome is Outcome.SUCCEEDED
    restarted = make_executor()  # a restarted control plane asks for both once more
    restarted.start(first)
    restarted.start(second)
    assert wait_gone(supervisors_under(jobs_dir)) == []

    assert runs.read_text().splitlines() == ["1", "2"]
    assert seen(restarted, 1, attempt=1) == stopped
    assert seen(restarted, 1, attempt=2) == ended
    assert restarted.log_path(1) == restarted.jobdir(at(1, 2)).log  # the latest attempt's
    assert restarted.log_path(1).read_text() == "resumed from step 7\n"
    assert "got SIGTERM" in restarted.jobdir(at(1, 1)).log.read_text()  # kept beside it


def test_a_job_dir_from_before_attempts_is_its_first_attempt(
    make_executor: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    """A job started by an older aifactory kept its files in the job's own directory: it is
    attempt 1, seen as it was and never started again."""
    executor = make_executor()
    runs = own_dir(executor, tmp_path / "shared") / "runs"
    job = launch(1, ["sh", "-c", f"echo run >> {runs}; echo done"], working_dir=str(runs.parent))
    ended = run_to_exit(executor, job)
    home, own = executor.home(1), executor.jobdir(at(1)).root
    for path in own.iterdir():  # lay it out as before
        shutil.move(path, home / path.name)
    own.rmdir()

    upgraded = make_executor()
    assert upgraded.jobdir(at(1)).root == home
    assert seen(upgraded, 1) == ended
    upgraded.start(job)
    assert seen(upgraded, 1) == ended
    assert runs.read_text() == "run\n"
    assert upgraded.log_path(1).read_text() == "done\n"
