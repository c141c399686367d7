"""An array through the facility: one submission, a job per index, each told its index, never
more running than its limit. SQLite and PostgreSQL."""

from __future__ import annotations

from aifactory.control.loop import ControlLoop
from aifactory.domain.arrays import ID_ENV, INDEX_ENV
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.services import queue as queue_service
from aifactory.services.auth import principal_of
from aifactory.services.jobs import list_jobs, submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor


def states(db: Database, array_id: int) -> dict[int, str]:
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        return {j.array_index or 0: j.state for j in list_jobs(session, admin, array_id=array_id)}


def test_an_array_runs_at_most_its_limit_and_every_task_knows_its_index(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(
            name="sweep",
            command=("true",),
            gpus_per_node=1,
            array_indices=(0, 1, 2, 3, 4),
            array_throttle=2,
        )
        first = submit_job(session, admin, spec, project=None, idempotency_key="k", now=clock())
        array_id = first.job.id
    assert first.job.array_id == array_id
    assert first.job.array_index == 0
    assert sorted(states(db, array_id)) == [0, 1, 2, 3, 4]
    assert loop.tick()
    found = states(db, array_id)
    assert sorted(i for i, s in found.items() if s == JobState.ADMITTED.value) == [0, 1]
    launched = {launch.env[INDEX_ENV] for launch in executor.started}
    assert launched == {"0", "1"}
    assert {launch.env[ID_ENV] for launch in executor.started} == {str(array_id)}
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        shown = queue_service.queue(session, admin, now=clock())
    assert [q.job.array_index for q in shown] == [2, 3, 4]
    assert all("runs at most 2 of its tasks at once" in q.explanation.reason for q in shown)
    done = Observation(
        Phase.EXITED, started_at=1, ended_at=2, exit_code=0, outcome=Outcome.SUCCEEDED
    )
    executor.observations[executor.started[0].job_id] = done
    clock.advance(1)
    assert loop.tick()
    clock.advance(1)
    assert loop.tick()
    found = states(db, array_id)
    assert sum(1 for s in found.values() if s == JobState.ADMITTED.value) == 2
    assert found[0] == JobState.SUCCEEDED.value
    with db.session() as session:  # the key answers with the array's first task
        admin = principal_of(session, user_by_name(session, "admin"))
        again = submit_job(session, admin, spec, project=None, idempotency_key="k", now=clock())
    assert (again.job.id, again.created) == (array_id, False)
    assert len(states(db, array_id)) == 5


def test_a_job_after_an_array_waits_for_every_task(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        sweep = JobSpec(name="sweep", command=("true",), gpus_per_node=1, array_indices=(0, 1))
        array_id = submit_job(
            session, admin, sweep, project=None, idempotency_key=None, now=0
        ).job.id
        after = JobSpec(name="merge", command=("true",), after=(("ok", array_id),))
        merge = submit_job(session, admin, after, project=None, idempotency_key=None, now=0).job.id
    assert loop.tick()
    done = Observation(
        Phase.EXITED, started_at=1, ended_at=2, exit_code=0, outcome=Outcome.SUCCEEDED
    )
    tasks = sorted(launch.job_id for launch in executor.started)
    assert len(tasks) == 2
    executor.observations[tasks[0]] = done
    for _ in range(2):
        clock.advance(1)
        assert loop.tick()
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        assert list_jobs(session, admin, state=JobState.HELD)[0].id == merge  # one task left
    executor.observations[tasks[1]] = done
    for _ in range(3):
        clock.advance(1)
        assert loop.tick()
    assert merge in {launch.job_id for launch in executor.started}
