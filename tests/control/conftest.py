"""What most control-loop tests start from: a hand-moved clock, the fake executor (one node,
8 GPUs) and a loop on a bootstrapped facility that has ticked once. A test module that needs
another kind of loop defines its own fixture of the same name."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.scheduler import Policy
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor(gpus=8)


@pytest.fixture
def loop(db: Database, executor: FakeExecutor, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert control.tick()
    return control
