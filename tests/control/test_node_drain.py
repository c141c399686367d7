"""A drained node in the control loop: the job running there finishes, no new one is placed
there (not even after the executor's next inventory offers it again), and it takes work once
resumed; the health check drains a node whose jobs dir is short of space, measured for real."""

from __future__ import annotations

from pathlib import Path

from aifactory.control.loop import INVENTORY_EVERY_S, ControlLoop
from aifactory.control.node_health import HealthCheck
from aifactory.domain.jobs import JobState
from aifactory.domain.node_health import HEALTH
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.executors.health import DiskSpace
from aifactory.services import nodes
from aifactory.services.auth import principal_of
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import Node
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job, submit

NODE = "fake-1"
NO_DISK_HAS_THIS_MUCH = 10**18  # bytes: an exabyte free
ANY_DISK_HAS_THIS_MUCH = 1


def drain(db: Database, now: float) -> None:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        nodes.drain(session, admin, NODE, reason="fan replaced", now=now)


def resume(db: Database, now: float) -> None:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        nodes.resume(session, admin, NODE, now=now)


def node(db: Database) -> Node:
    with db.read() as session:
        found = session.get(Node, NODE)
        assert found is not None
        return found


def test_a_drained_node_lets_its_job_finish_and_takes_no_new_one_until_resumed(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    running = submit(db, clock(), gpus=4)
    loop.tick()
    executor.observations[running] = Observation(Phase.RUNNING, started_at=clock())
    loop.tick()
    assert job(db, running).state == JobState.RUNNING.value

    drain(db, clock())
    waiting = submit(db, clock(), gpus=1)  # 4 GPUs are free, but not for new work
    clock.advance(INVENTORY_EVERY_S)  # the executor still offers the node: it stays drained
    loop.tick()
    loop.tick()
    assert job(db, waiting).state == JobState.PENDING.value
    assert job(db, running).state == JobState.RUNNING.value
    assert executor.cancelled == []
    assert executor.preempted == []

    executor.observations[running] = Observation(
        Phase.EXITED, started_at=1.0, ended_at=2.0, exit_code=0, outcome=Outcome.SUCCEEDED
    )
    loop.tick()
    assert job(db, running).state == JobState.SUCCEEDED.value
    assert job(db, waiting).state == JobState.PENDING.value

    resume(db, clock())
    loop.tick()
    assert job(db, waiting).state == JobState.ADMITTED.value


def test_a_jobs_dir_short_of_space_drains_the_node_and_room_again_resumes_it(
    db: Database, loop: ControlLoop, clock: FakeClock, tmp_path: Path
) -> None:
    HealthCheck(db, DiskSpace(NODE, tmp_path, NO_DISK_HAS_THIS_MUCH))(clock())
    failing = node(db)
    assert not failing.schedulable
    assert failing.drained_by == HEALTH
    assert failing.drain_reason == f"disk: jobs dir {tmp_path} has less than 1e+09 GB free"
    waiting = submit(db, clock(), gpus=1)
    loop.tick()
    assert job(db, waiting).state == JobState.PENDING.value

    HealthCheck(db, DiskSpace(NODE, tmp_path, ANY_DISK_HAS_THIS_MUCH))(clock())
    assert node(db).schedulable
    assert node(db).drained_at is None
    loop.tick()
    assert job(db, waiting).state == JobState.ADMITTED.value
