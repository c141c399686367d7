"""A job's time limit ends it as TIMEOUT. Slurm counts limits in whole minutes and checks them
about every 30 s, so the job (conftest.over_time_job) is submitted with the session's first
cluster job and this test, which runs late, waits for the rest of its 60 to 90 s."""

from __future__ import annotations

import time

import pytest

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.slurm.values import ExitStatus
from tests.executors.slurm.conftest import Jobs, OverTime

pytestmark = pytest.mark.slow


@pytest.mark.timeout(200)
def test_a_time_limit_ends_the_job_as_timeout(jobs: Jobs, over_time_job: int) -> None:
    job = jobs.wait_ended(over_time_job, timeout_s=150)
    assert (job.state, job.outcome, job.reason) == ("TIMEOUT", Outcome.TIMEOUT, "TimeLimit")
    assert job.exit == ExitStatus(0, 15)  # SIGTERM, then SIGKILL after KillWait if need be
    assert job.time_limit_s == 60
    assert job.started_at is not None
    assert job.ended_at is not None
    assert 60 <= job.ended_at - job.started_at <= 120


@pytest.mark.timeout(200)
def test_an_attempt_over_its_limit_is_warned_then_ends_as_timeout(
    over_time_attempt: OverTime,
) -> None:
    executor, attempt = over_time_attempt.executor, over_time_attempt.attempt
    deadline = time.monotonic() + 150
    while (seen := executor.poll([attempt])[attempt]).phase is not Phase.EXITED:
        assert time.monotonic() < deadline, seen
        time.sleep(1)
    assert seen.outcome is Outcome.TIMEOUT
    assert over_time_attempt.checkpoint.read_text() == "warned\n"  # the grace before the end
