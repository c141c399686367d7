"""Drain and resume by operators: who may, what is recorded (the node's drain, the audit log),
what the executor is told, and how the health check's drains meet an operator's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.control.node_health import HealthCheck
from aifactory.domain.node_health import HEALTH, Checkup
from aifactory.errors import InvalidInput, NotFound, NotReady, PermissionDenied
from aifactory.services import nodes
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, Node
from tests.services.accounting_world import T0, build_world, who


class Control:
    """A NodeControl that records what it was told, and refuses when asked to."""

    def __init__(self, refuse: bool = False) -> None:
        self.told: list[tuple[str, ...]] = []
        self.refuse = refuse

    def drain(self, node_id: str, reason: str) -> None:
        if self.refuse:
            raise RuntimeError("scontrol: Invalid node name specified")
        self.told.append(("drain", node_id, reason))

    def resume(self, node_id: str) -> None:
        self.told.append(("resume", node_id))


class Probe:
    def __init__(self, problem: str | None) -> None:
        self.problem = problem

    def check(self) -> list[Checkup]:
        return [Checkup("node-1", self.problem)]


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def node(db: Database) -> Node:
    with db.read() as s:
        found = s.get(Node, "node-1")
        assert found is not None
        return found


def audit_trail(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.object)
            .where(AuditEvent.action.like("node.%"))
            .order_by(AuditEvent.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_an_operator_drains_and_resumes_a_node_and_both_are_audited(world: Database) -> None:
    control = Control()
    with world.session() as s:
        shown = nodes.drain(
            s, who(s, "olga"), "node-1", reason=" GPU 3 replaced ", now=T0, control=control
        )
    assert (shown.schedulable, shown.drain_reason, shown.drained_by, shown.drained_at) == (
        False,
        "GPU 3 replaced",
        "olga",
        T0,
    )
    assert control.told == [("drain", "node-1", "GPU 3 replaced [olga]")]
    with world.read() as s:
        (listed,) = nodes.list_nodes(s, who(s, "alice"))  # anyone signed in sees why
        (pictured,) = nodes.cluster(s, who(s, "alice")).nodes
    assert listed.drain_reason == "GPU 3 replaced"
    assert pictured.drain is not None
    assert pictured.drain.by == "olga"

    with world.session() as s:
        back = nodes.resume(s, who(s, "olga"), "node-1", now=T0 + 60, control=control)
    assert (back.schedulable, back.drain_reason, back.drained_by, back.drained_at) == (
        True,
        None,
        None,
        None,
    )
    assert control.told[-1] == ("resume", "node-1")
    assert audit_trail(world) == [
        ("olga", "node.drain", "node:node-1"),
        ("olga", "node.resume", "node:node-1"),
    ]


def test_only_admins_and_operators_may_drain(world: Database) -> None:
    for name in ("alice", "fiona", "rita"):
        with world.session() as s, pytest.raises(PermissionDenied, match="admin or operator"):
            nodes.drain(s, who(s, name), "node-1", reason="mine now", now=T0)
        with world.session() as s, pytest.raises(PermissionDenied):
            nodes.resume(s, who(s, name), "node-1", now=T0)
    assert node(world).schedulable
    assert audit_trail(world) == []


@pytest.mark.parametrize(
    ("reason", "said"),
    [("  ", "say why"), ("x" * 501, "at most 500"), ("two\nlines", "one line")],
)
def test_a_drain_needs_a_reason_on_one_line(world: Database, reason: str, said: str) -> None:
    with world.session() as s, pytest.raises(InvalidInput, match=said) as refused:
        nodes.drain(s, who(s, "admin"), "node-1", reason=reason, now=T0)
    assert refused.value.field == "reason"


def test_an_unknown_node_is_not_found(world: Database) -> None:
    with world.session() as s, pytest.raises(NotFound) as missing:
        nodes.drain(s, who(s, "admin"), "node-9", reason="gone", now=T0)
    assert missing.value.field == "node"


def test_a_drain_the_executor_refuses_is_no_drain(world: Database) -> None:
    with pytest.raises(NotReady, match="Invalid node name"), world.session() as s:
        nodes.drain(s, who(s, "olga"), "node-1", reason="x", now=T0, control=Control(True))
    assert node(world).drained_at is None
    assert node(world).schedulable
    assert audit_trail(world) == []


def test_resuming_a_node_that_is_not_drained_changes_nothing(world: Database) -> None:
    control = Control()
    with world.session() as s:
        shown = nodes.resume(s, who(s, "olga"), "node-1", now=T0, control=control)
    assert shown.schedulable
    assert control.told == []
    assert audit_trail(world) == []


def test_the_health_check_drains_a_failing_node_and_resumes_it_once_it_passes(
    world: Database,
) -> None:
    probe = Probe("disk: jobs dir /x has less than 2 GB free")
    check = HealthCheck(world, probe, every_s=30)
    check(T0)
    failing = node(world)
    assert (failing.schedulable, failing.drained_by, failing.drain_reason) == (
        False,
        HEALTH,
        probe.problem,
    )
    assert failing.health_problem == probe.problem
    assert failing.health_checked_at == T0

    check(T0 + 10)  # not due yet
    probe.problem = None
    check(T0 + 30)
    passing = node(world)
    assert (passing.schedulable, passing.drained_at, passing.health_problem) == (True, None, None)
    assert audit_trail(world) == [
        (HEALTH, "node.drain", "node:node-1"),
        (HEALTH, "node.resume", "node:node-1"),
    ]


def test_a_passing_health_check_leaves_an_operators_drain_alone(world: Database) -> None:
    with world.session() as s:
        nodes.drain(s, who(s, "olga"), "node-1", reason="memory upgrade", now=T0)
    HealthCheck(world, Probe(None))(T0 + 30)
    kept = node(world)
    assert (kept.schedulable, kept.drained_by, kept.drain_reason) == (
        False,
        "olga",
        "memory upgrade",
    )
    assert kept.health_checked_at == T0 + 30
    assert kept.health_problem is None


def test_an_operator_may_resume_a_node_the_health_check_drained(world: Database) -> None:
    HealthCheck(world, Probe("GPU GPU-1: XID 79"))(T0)
    with world.session() as s:
        nodes.resume(s, who(s, "olga"), "node-1", now=T0 + 5)
    assert node(world).schedulable
    HealthCheck(world, Probe("GPU GPU-1: XID 79"))(T0 + 30)  # still failing: drained again
    assert node(world).drained_by == HEALTH
