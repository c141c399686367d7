"""Queue control against the real control loop (fake executor, SQLite and PostgreSQL): a person's
hold keeps a job out of every round until a person releases it, the loop's own holds are not a
person's to lift, updates touch only waiting jobs, and a bulk cancel answers job by job."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobState
from aifactory.errors import Conflict
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.principal import Principal
from aifactory.services.queue_control import (
    CancelOutcome,
    JobChanges,
    Selection,
    cancel_jobs,
    hold_job,
    release_job,
    update_job,
)
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import AuditEvent, Job
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import events, job, submit


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def loop(db: Database, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, FakeExecutor(gpus=8), Policy(), clock, lease_ttl_s=10)
    assert control.tick()
    return control


def admin(session: Session) -> Principal:
    return principal_of(session, user_by_name(session, "admin"))


def tick(loop: ControlLoop, clock: FakeClock) -> None:
    clock.advance(1)
    assert loop.tick()


def audited(db: Database, action: str) -> int:
    with db.read() as session:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return session.scalar(stmt) or 0


def test_a_held_job_waits_through_every_round_until_a_person_releases_it(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    held = submit(db, clock(), gpus=8)
    with db.session() as session:
        shown = hold_job(session, admin(session), held, reason="new data tonight", now=clock())
    assert (shown.state, shown.state_reason) == ("HELD", "held by admin: new data tonight")
    after = submit(db, clock(), gpus=8)  # the held job keeps no room from anyone

    for _ in range(3):
        tick(loop, clock)
    assert job(db, held).state == JobState.HELD.value
    assert job(db, held).state_reason == "held by admin: new data tonight"
    assert job(db, after).state == JobState.ADMITTED.value

    with db.session() as session:
        assert release_job(session, admin(session), held, now=clock()).state == "PENDING"
    with db.session() as session:  # the other job ends: room for the released one
        row = session.get_one(Job, after)
        switch_job_state(session, row, JobState.CANCELLED, now=clock(), actor="test")
    tick(loop, clock)
    assert job(db, held).state == JobState.ADMITTED.value
    assert events(db, held)[1:] == [
        ("PENDING", "HELD", "held by admin: new data tonight"),
        ("HELD", "PENDING", "released by admin"),
        ("PENDING", "ADMITTED", "admitted"),
    ]
    assert (audited(db, "job.hold"), audited(db, "job.release")) == (1, 1)


@pytest.mark.parametrize(
    ("hold", "mends"),
    [
        ("no budget: the project has no allocation valid now", "aifactory allocations adjust"),
        ("data: no valid grant of corpus@1 to default", "aifactory datasets grant"),
    ],
)
def test_a_hold_the_loop_made_is_lifted_by_the_loop_not_a_person(
    db: Database, loop: ControlLoop, clock: FakeClock, hold: str, mends: str
) -> None:
    job_id = submit(db, clock(), gpus=1)
    with db.session() as session:
        row = session.get_one(Job, job_id)
        switch_job_state(
            session, row, JobState.HELD, now=clock(), actor="control-loop", reason=hold
        )

    with db.session() as session, pytest.raises(Conflict) as refused:
        release_job(session, admin(session), job_id, now=clock())

    assert hold in refused.value.message
    assert mends in refused.value.message
    assert job(db, job_id).state_reason == hold
    with db.session() as session, pytest.raises(Conflict, match="already held"):
        hold_job(session, admin(session), job_id, reason=None, now=clock())


def test_only_a_waiting_job_is_held_or_updated(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    running = submit(db, clock(), gpus=1)
    tick(loop, clock)
    assert job(db, running).state == JobState.ADMITTED.value
    with db.session() as session:
        with pytest.raises(Conflict, match="only a waiting"):
            hold_job(session, admin(session), running, reason=None, now=clock())
        with pytest.raises(Conflict, match="only a waiting"):
            update_job(session, admin(session), running, JobChanges(priority=-1), now=clock())
        with pytest.raises(Conflict, match="only a held job"):
            release_job(session, admin(session), running, now=clock())


def test_an_update_records_what_changed_and_nothing_when_nothing_did(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    waiting = submit(db, clock(), gpus=8, name="sweep")
    with db.session() as session:
        hold_job(session, admin(session), waiting, reason=None, now=clock())  # held is waiting
        same = JobChanges(name="sweep", time_limit_s=3600, priority=0)
        update_job(session, admin(session), waiting, same, now=clock())
    assert audited(db, "job.update") == 0
    with db.session() as session:
        changes = JobChanges(name="sweep-2", time_limit_s=600)
        shown = update_job(session, admin(session), waiting, changes, now=clock())
    assert (shown.name, shown.time_limit_s, shown.priority) == ("sweep-2", 600, 0)
    with db.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "job.update")).one()
    assert event.detail == {
        "from": {"name": "sweep", "time_limit_s": 3600},
        "to": {"name": "sweep-2", "time_limit_s": 600},
    }


def test_a_bulk_cancel_answers_each_job_and_a_dry_run_changes_nothing(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    running = submit(db, clock(), gpus=8, name="big")
    tick(loop, clock)
    waiting = submit(db, clock(), gpus=8, name="sweep-1")
    ended = submit(db, clock(), gpus=8, name="sweep-2")
    with db.session() as session:
        cancel_jobs(session, admin(session), Selection(ids=(ended,)), now=clock())
    ids = (waiting, running, ended, 999_999, waiting)

    with db.session() as session:
        dry = cancel_jobs(session, admin(session), Selection(ids=ids), now=clock(), dry_run=True)
    assert [(r.job_id, r.outcome) for r in dry] == [
        (waiting, CancelOutcome.CANCELLED),
        (running, CancelOutcome.STOPPING),
        (ended, CancelOutcome.ALREADY_ENDED),
        (999_999, CancelOutcome.NOT_FOUND),
    ]
    assert job(db, waiting).state == JobState.PENDING.value
    assert audited(db, "job.cancel") == 1  # the one cancelled before

    with db.session() as session:
        done = cancel_jobs(session, admin(session), Selection(ids=ids), now=clock())
    assert [r.outcome for r in done] == [r.outcome for r in dry]
    assert [r.message for r in done][:3] == [
        f"job {waiting} cancelled",
        f"job {running} is being stopped",
        f"job {ended} already ended (CANCELLED)",
    ]
    assert job(db, waiting).state == JobState.CANCELLED.value
    assert job(db, running).cancel_requested
    assert audited(db, "job.cancel") == 3
    with db.session() as session:  # a job already being stopped is not recorded twice
        again = cancel_jobs(session, admin(session), Selection(ids=(running,)), now=clock())
    assert again[0].outcome is CancelOutcome.STOPPING
    assert audited(db, "job.cancel") == 3
