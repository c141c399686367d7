"""Job dependencies through the control loop: a dependent is held until what it waits for
ends, released and started when that ended as it needs, cancelled (saying why) when it ended
the wrong way. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.errors import InvalidInput
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.services import queue as queue_service
from aifactory.services.auth import principal_of
from aifactory.services.jobs import show_job, submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.jobs import lock_job, switch_job_state
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import events, job


def submit(db: Database, now: float, *after: tuple[str, int]) -> int:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(name="step", command=("true",), gpus_per_node=1, after=tuple(after))
        return submit_job(session, admin, spec, project=None, idempotency_key=None, now=now).job.id


def ended(outcome: Outcome, code: int) -> Observation:
    return Observation(Phase.EXITED, started_at=1.0, ended_at=2.0, exit_code=code, outcome=outcome)


def test_a_chain_runs_in_order_and_a_dependent_of_a_failure_is_cancelled_saying_why(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    first = submit(db, clock())
    then = submit(db, clock(), ("ok", first))
    rescue = submit(db, clock(), ("not-ok", first))
    last = submit(db, clock(), ("any", then))
    assert loop.tick()
    assert job(db, first).state == JobState.ADMITTED.value
    for waiting in (then, rescue, last):
        row = job(db, waiting)
        assert row.state == JobState.HELD.value
        assert (row.state_reason or "").startswith("after: waits for job ")
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        view = show_job(session, admin, then)
        shown = queue_service.explain_job(session, view, now=clock())
    assert shown is not None
    assert shown.held
    assert shown.reason == f"after: waits for job {first} to succeed"
    executor.observations[first] = ended(Outcome.SUCCEEDED, 0)
    clock.advance(1)
    assert loop.tick()  # the first ends: `then` is released and starts, `rescue` can never run
    assert job(db, first).state == JobState.SUCCEEDED.value
    clock.advance(1)
    assert loop.tick()
    assert job(db, then).state == JobState.ADMITTED.value
    assert events(db, then)[-2][2] == "the jobs it waited for have ended as it needs"
    cancelled = job(db, rescue)
    assert cancelled.state == JobState.CANCELLED.value
    assert cancelled.state_reason == (
        f"dependency on job {first} can never be met: it ended SUCCEEDED, and this job was "
        "to run only if it failed"
    )
    assert job(db, last).state == JobState.HELD.value  # `then` is running, not ended
    executor.observations[then] = ended(Outcome.FAILED, 3)
    clock.advance(1)
    assert loop.tick()
    clock.advance(1)
    assert loop.tick()
    assert job(db, last).state == JobState.ADMITTED.value  # after-any: a failure will do


def test_a_dependency_is_checked_at_submission(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    with pytest.raises(InvalidInput, match="no job 999") as missing:
        submit(db, clock(), ("ok", 999))
    assert missing.value.field == "after_ok"
    done = submit(db, clock())
    with db.session() as session:
        locked = lock_job(session, done)
        assert locked is not None
        switch_job_state(session, locked, JobState.CANCELLED, now=clock(), actor="t", reason="x")
    with pytest.raises(InvalidInput, match="can never be met") as doomed:
        submit(db, clock(), ("ok", done))
    assert doomed.value.field == "after_ok"
    assert submit(db, clock(), ("not-ok", done)) > done  # a cancelled job did not succeed
