"""Network blocks through the live loop: the executor's blocks reach the scheduler, which
places gangs inside one block (the reasons a gang waits for one: tests/scheduler)."""

from __future__ import annotations

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobSpec, JobState, Network
from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import NodeOffer
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.flags import set_open_network
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job

BLOCKS = {"f1": "leaf-a", "f2": "leaf-a", "f3": "leaf-b", "f4": "leaf-b"}


class BlockExecutor(FakeExecutor):
    """Four 8-GPU nodes in two blocks."""

    def inventory(self) -> list[NodeOffer]:
        return [
            NodeOffer(
                Node(node_id, "NL", Resources(8, 16, 64_000), gpu_model="h100", block=block),
                [f"GPU-{i}" for i in range(8)],
            )
            for node_id, block in BLOCKS.items()
        ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def loop(db: Database, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
        set_open_network(session, True)
    control = ControlLoop(db, BlockExecutor(), Policy(), clock, lease_ttl_s=10)
    assert control.tick()
    return control


def _submit(db: Database, now: float, nodes: int, *, gpus: int = 8, one_block: bool = False) -> int:
    spec = JobSpec(
        name="gang",
        command=("true",),
        gpus_per_node=gpus,
        nodes=nodes,
        network=Network.OPEN if nodes > 1 else Network.NONE,
        one_block=one_block,
    )
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        return submit_job(session, admin, spec, project=None, idempotency_key=None, now=now).job.id


def test_gangs_go_inside_one_block(db: Database, loop: ControlLoop, clock: FakeClock) -> None:
    lone = _submit(db, clock(), 1, gpus=1)
    loop.tick()
    (first,) = job(db, lone).placement or {}
    # One node of the lone job's block is whole; both of the other block's are: the gang goes
    # there (by node order alone it would have spread over the two blocks).
    gang = _submit(db, clock(), 2)
    loop.tick()
    assert job(db, gang).state != JobState.PENDING.value
    placed = set(job(db, gang).placement or {})
    assert len({BLOCKS[n] for n in placed}) == 1
    assert BLOCKS[first] not in {BLOCKS[n] for n in placed}
    # A gang that must stay inside one block fits beside the lone job: it starts there.
    inside = _submit(db, clock(), 2, gpus=4, one_block=True)
    loop.tick()
    assert set(job(db, inside).placement or {}) == {
        n for n, b in BLOCKS.items() if b == BLOCKS[first]
    }
