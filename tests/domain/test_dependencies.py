"""The dependency rule: which end of a job lets its dependent run, and which never can."""

from __future__ import annotations

import pytest

from aifactory.domain.dependencies import (
    After,
    Dependency,
    DependencyState,
    never_met,
    still_waiting,
)
from aifactory.domain.jobs import JobState

S = JobState


@pytest.mark.parametrize(
    ("after", "state", "runs"),
    [
        (After.OK, S.SUCCEEDED, True),
        (After.OK, S.FAILED, False),
        (After.OK, S.CANCELLED, False),
        (After.OK, S.TIMEOUT, False),
        (After.ANY, S.SUCCEEDED, True),
        (After.ANY, S.FAILED, True),
        (After.ANY, S.CANCELLED, True),
        (After.NOT_OK, S.FAILED, True),
        (After.NOT_OK, S.TIMEOUT, True),
        (After.NOT_OK, S.CANCELLED, True),
        (After.NOT_OK, S.SUCCEEDED, False),
    ],
)
def test_how_a_dependency_ended_decides(after: After, state: JobState, runs: bool) -> None:
    found = [DependencyState(Dependency(after, 7), state)]
    assert still_waiting(found) is None  # ended: nothing to wait for
    assert (never_met(found) is None) is runs


@pytest.mark.parametrize("state", [S.PENDING, S.HELD, S.ADMITTED, S.RUNNING, S.PREEMPTED])
def test_until_a_dependency_ends_the_job_waits_and_is_not_doomed(state: JobState) -> None:
    found = [
        DependencyState(Dependency(After.OK, 7), state),
        DependencyState(Dependency(After.ANY, 8), S.FAILED),
    ]
    assert never_met(found) is None
    assert still_waiting(found) == "after: waits for job 7 to succeed"
