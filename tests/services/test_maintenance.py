"""Maintenance windows: operators create and cancel them, both audited and announced to those
with work on the facility; everyone lists them; the control loop's snapshot carries them."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from aifactory.control.snapshot import read_snapshot
from aifactory.domain.jobs import JobState
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.services import maintenance
from aifactory.services.jobs import JobSpec, submit_job
from aifactory.store.db import Database
from aifactory.store.maintenance import in_force
from aifactory.store.models import AuditEvent, Job, OutboxNotification, User
from tests.services.accounting_world import DAY, T0, build_world, who

H = 3600.0


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    with db.session() as s:
        for name in ("owen", "alice", "bob"):
            s.execute(update(User).where(User.name == name).values(email=f"{name}@example.org"))
    return db


def submit(db: Database, user: str, project: str, *, limit: float = H) -> int:
    with db.session() as s:
        spec = JobSpec(name="train", command=("true",), time_limit_s=int(limit))
        made = submit_job(s, who(s, user), spec, project=project, idempotency_key=None, now=T0)
        return made.job.id


def run_on(db: Database, job_id: int, node: str, started: float) -> None:
    """As the control loop would have placed it."""
    with db.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state=JobState.RUNNING.value,
                admitted_at=started,
                started_at=started,
                placement={node: {"gpus": 1, "cpus": 1, "memory_mb": 1, "gpu_ids": ["0"]}},
            )
        )


def mails(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as s:
        rows = s.execute(
            select(User.name, OutboxNotification.event, OutboxNotification.subject)
            .join(User, User.id == OutboxNotification.user_id)
            .order_by(User.name, OutboxNotification.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_an_operator_announces_a_window_to_everyone_with_work_here(world: Database) -> None:
    alices = submit(world, "alice", "lab", limit=4 * H)  # running into the window
    submit(world, "bob", "shop")  # waiting
    run_on(world, alices, "node-1", T0)
    with world.session() as s:
        made = maintenance.create(
            s,
            who(s, "olga"),
            nodes=["node-1"],
            begins_at=T0 + 2 * H,
            ends_at=T0 + 5 * H,
            reason=" firmware update ",
            now=T0 + 60,
        )
    assert (made.nodes, made.reason, made.state, made.created_by) == (
        ("node-1",),
        "firmware update",
        "upcoming",
        "olga",
    )
    (affected,) = made.affected  # the operator sees what the scheduler will not stop
    assert (affected.job_id, affected.nodes, affected.limit_ends_at) == (
        alices,
        ("node-1",),
        T0 + 4 * H,
    )
    assert made.notified == 2  # alice and bob by e-mail; owen has no work here
    subject = "Maintenance from 2023-11-15 00:13 UTC to 2023-11-15 03:13 UTC"
    assert mails(world) == [("alice", "maintenance", subject), ("bob", "maintenance", subject)]
    with world.read() as s:
        (listed,) = maintenance.listed(s, who(s, "vera"), now=T0 + 60)  # anyone signed in
        (banner,) = maintenance.announced(s, now=T0 + 60)
        action = s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "olga")).one()
    assert listed.id == banner.id == made.id
    assert action == "maintenance.create"


def test_the_scheduler_reads_windows_in_force_and_every_node_means_every_node(
    world: Database,
) -> None:
    submit(world, "alice", "lab")
    with world.session() as s:
        every = maintenance.create(
            s,
            who(s, "admin"),
            nodes=None,
            begins_at=T0 + H,
            ends_at=T0 + 2 * H,
            reason="UPS",
            now=T0,
        )
        gone = maintenance.create(
            s,
            who(s, "admin"),
            nodes=["node-1"],
            begins_at=T0,
            ends_at=T0 + 3 * H,
            reason="x",
            now=T0,
        )
        maintenance.cancel(s, who(s, "admin"), gone.id, now=T0 + 1)
    assert every.all_nodes
    with world.read() as s:
        (window,) = in_force(s, T0 + 10, ["node-1", "node-2"])
        snapshot = read_snapshot(s, now=T0 + 10)
        assert in_force(s, T0 + 2 * H, ["node-1"]) == ()  # over
    assert (window.nodes, window.begins_at, window.reason) == (
        frozenset({"node-1", "node-2"}),
        T0 + H,
        "UPS",
    )
    assert [w.window_id for w in snapshot.maintenance] == [every.id]


def test_cancelling_tells_those_told_and_is_kept_for_the_record(world: Database) -> None:
    submit(world, "alice", "lab")
    with world.session() as s:
        made = maintenance.create(
            s,
            who(s, "olga"),
            nodes=["node-1"],
            begins_at=T0 + H,
            ends_at=T0 + 2 * H,
            reason="cooling",
            now=T0,
        )
    with world.session() as s:  # alice's work is done; she was told, so she is told again
        s.execute(update(Job).values(state=JobState.CANCELLED.value))
        called_off = maintenance.cancel(s, who(s, "olga"), made.id, now=T0 + 10)
        again = maintenance.cancel(s, who(s, "olga"), made.id, now=T0 + 20)  # no second notice
    assert (called_off.state, called_off.cancelled_by, called_off.notified) == (
        "cancelled",
        "olga",
        1,
    )
    assert again.notified == 0
    assert [m[2] for m in mails(world)][-1] == f"Maintenance {made.id} is called off"
    with world.read() as s:
        assert maintenance.listed(s, who(s, "alice"), now=T0 + 30) == []
        (kept,) = maintenance.listed(s, who(s, "alice"), now=T0 + 30, everything=True)
    assert kept.state == "cancelled"
    with world.session() as s, pytest.raises(Conflict, match="over already"):
        over = maintenance.create(
            s, who(s, "olga"), nodes=None, begins_at=T0, ends_at=T0 + H, reason="r", now=T0
        )
        maintenance.cancel(s, who(s, "olga"), over.id, now=T0 + 2 * H)


def test_only_admins_and_operators_plan_maintenance(world: Database) -> None:
    for name in ("alice", "fiona", "rita"):
        with world.session() as s, pytest.raises(PermissionDenied):
            maintenance.create(
                s, who(s, name), nodes=None, begins_at=T0, ends_at=T0 + H, reason="mine", now=T0
            )
    with world.session() as s, pytest.raises(NotFound) as missing:
        maintenance.cancel(s, who(s, "admin"), 99, now=T0)
    assert missing.value.field == "window"


@pytest.mark.parametrize(
    ("nodes", "begins", "ends", "reason", "field", "said"),
    [
        (None, T0 - DAY, T0, "r", "begins_at", "in the past"),
        (None, T0 + H, T0 + H, "r", "ends_at", "end after it begins"),
        (None, T0, T0 + 40 * DAY, "r", "ends_at", "at most 31 days"),
        (None, T0 + 400 * DAY, T0 + 401 * DAY, "r", "begins_at", "at most a year ahead"),
        (None, T0 - 200, T0 - 100, "r", "ends_at", "after now"),
        (None, T0, T0 + H, "two\nlines", "reason", "one line"),
        (None, T0, T0 + H, "  ", "reason", "say why"),
        (["node-1", "node-9"], T0, T0 + H, "r", "nodes", "no such node: node-9"),
        ([], T0, T0 + H, "r", "nodes", "at least one node"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(
    world: Database,
    nodes: list[str] | None,
    begins: float,
    ends: float,
    reason: str,
    field: str,
    said: str,
) -> None:
    with world.session() as s, pytest.raises(InvalidInput, match=said) as refused:
        maintenance.create(
            s, who(s, "admin"), nodes=nodes, begins_at=begins, ends_at=ends, reason=reason, now=T0
        )
    assert refused.value.field == field
    with world.read() as s:
        assert maintenance.listed(s, who(s, "admin"), now=T0, everything=True) == []
