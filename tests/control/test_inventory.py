"""Nodes are read again while the loop runs: a node the executor stops offering (drained, down)
takes no new work, and takes it again once it is back; an executor that cannot be asked for a
while does not stop scheduling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifactory.control.loop import INVENTORY_EVERY_S, ControlLoop
from aifactory.control.snapshot import read_snapshot
from aifactory.domain.jobs import JobState
from aifactory.executors.base import NodeOffer
from aifactory.scheduler import Policy
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from aifactory.store.models import Node
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job, submit


class DrainableExecutor(FakeExecutor):
    def __init__(self) -> None:
        super().__init__()
        self.offered = True
        self.reachable = True

    def inventory(self) -> list[NodeOffer]:
        if not self.reachable:
            raise RuntimeError("the cluster does not answer")
        return super().inventory() if self.offered else []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> DrainableExecutor:
    return DrainableExecutor()


@pytest.fixture
def loop(db: Database, executor: DrainableExecutor, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=1000)
    assert control.tick()
    return control


def schedulable(db: Database) -> bool:
    with db.read() as session:
        node = session.get(Node, "fake-1")
        assert node is not None
        return node.schedulable


def test_a_drained_node_takes_no_work_until_it_is_back(
    db: Database, loop: ControlLoop, executor: DrainableExecutor, clock: FakeClock
) -> None:
    executor.offered = False
    clock.advance(INVENTORY_EVERY_S)
    loop.tick()
    assert not schedulable(db)
    waiting = submit(db, clock(), gpus=1)  # accepted: the node exists, it is only drained
    loop.tick()
    assert job(db, waiting).state == JobState.PENDING.value

    executor.offered = True
    clock.advance(INVENTORY_EVERY_S)
    loop.tick()
    assert schedulable(db)
    assert job(db, waiting).state == JobState.ADMITTED.value


def test_an_unreachable_executor_does_not_stop_scheduling(
    db: Database, loop: ControlLoop, executor: DrainableExecutor, clock: FakeClock
) -> None:
    executor.reachable = False
    clock.advance(INVENTORY_EVERY_S)
    job_id = submit(db, clock(), gpus=1)
    assert loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED.value
    assert schedulable(db)  # as last read


def test_a_nodes_network_block_reaches_the_schedulers_snapshot(
    db: Database, loop: ControlLoop, executor: DrainableExecutor, clock: FakeClock
) -> None:
    with db.read() as session:
        (before,) = read_snapshot(session).nodes
    assert before.block is None  # offered without topology

    executor.node = replace(executor.node, block="leaf3")
    clock.advance(INVENTORY_EVERY_S)
    loop.tick()

    with db.read() as session:
        assert session.get_one(Node, "fake-1").block == "leaf3"
        (after,) = read_snapshot(session).nodes
    assert after.block == "leaf3"
