"""Work the facility did not start (jobs submitted to Slurm directly) holds room the scheduler
must not hand out: through the real control loop, a node with 6 of its 8 GPUs taken by foreign
load admits a 2-GPU job but not a 4-GPU one, until that load is gone."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.control.snapshot import without_foreign
from aifactory.domain.jobs import JobState
from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, Policy, Snapshot
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job, submit


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def loop(db: Database, clock: FakeClock, executor: FakeExecutor) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert control.tick()
    return control


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor(gpus=8, cpus=16)


def test_foreign_load_is_not_handed_out(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    executor.foreign = {"fake-1": Resources(gpus=6, cpus=6, memory_mb=8000)}
    large = submit(db, clock(), gpus=4, name="large")
    small = submit(db, clock(), gpus=2, name="small")
    loop.tick()
    assert job(db, small).state == JobState.ADMITTED.value
    assert job(db, large).state == JobState.PENDING.value

    executor.foreign = {}
    clock.advance(1)
    loop.tick()
    assert job(db, large).state == JobState.ADMITTED.value


def test_capacity_never_goes_below_nothing() -> None:
    node = NodeView("n1", Resources(4, 8, 1000))
    snapshot = Snapshot(nodes=(node, NodeView("n2", Resources(2, 2, 10))), running=(), pending=())
    less = without_foreign(snapshot, {"n1": Resources(6, 2, 500), "elsewhere": Resources(1)})
    assert [n.capacity for n in less.nodes] == [Resources(0, 6, 500), Resources(2, 2, 10)]
    assert without_foreign(snapshot, {}) is snapshot
