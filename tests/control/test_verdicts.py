"""The control loop keeps each round's verdicts, and the queue reads them (services.queue):
the loop judges, everyone else only shows what it judged. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from aifactory.control.loop import ControlLoop
from aifactory.control.verdicts import EVERY_ROUND, VerdictKeeper
from aifactory.domain.jobs import JobState
from aifactory.scheduler import Policy
from aifactory.services import queue as queue_service
from aifactory.services.auth import principal_of
from aifactory.services.tenancy import user_by_name
from aifactory.store import flags
from aifactory.store.db import Database
from aifactory.store.models import JobVerdict
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import cancel, job, submit


def _queue(db: Database, clock: FakeClock) -> list[queue_service.Queued]:
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        return queue_service.queue(session, admin, now=clock())


def test_the_queue_shows_the_rounds_verdicts_and_who_came_since(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    big = submit(db, clock(), gpus=8)
    second = submit(db, clock(), gpus=8)
    third = submit(db, clock(), gpus=8)
    assert loop.tick()
    assert job(db, big).state == JobState.ADMITTED.value
    late = submit(db, clock(), gpus=1)  # after the round: not judged yet
    shown = _queue(db, clock)
    assert [q.job.id for q in shown] == [second, third, late]
    assert [q.explanation.position for q in shown] == [1, 2, None]
    assert "GPUs are short" in shown[0].explanation.reason
    assert "1 job(s) ahead" in shown[1].explanation.reason
    assert shown[2].explanation.reason == queue_service.NOT_JUDGED
    with db.read() as session:
        stored = session.get(JobVerdict, second)
        assert stored is not None
        assert stored.estimated_start == pytest.approx(clock() + 3600)  # the first one's limit
        one = queue_service.explain_job(session, job(db, third), now=clock())
        assert one is not None
        assert one.position == 2


def test_verdicts_follow_the_queue_and_leave_with_the_jobs(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    submit(db, clock(), gpus=8)
    waiting = [submit(db, clock(), gpus=8) for _ in range(3)]
    assert loop.tick()
    cancel(db, waiting[0], clock())
    clock.advance(1)
    assert loop.tick()
    shown = _queue(db, clock)
    assert [(q.job.id, q.explanation.position) for q in shown] == [
        (waiting[1], 1),
        (waiting[2], 2),
    ]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(JobVerdict)) == 2


def test_a_new_lease_term_writes_every_verdict_again(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    submit(db, clock(), gpus=8)
    waiting = submit(db, clock(), gpus=8)
    assert loop.tick()
    with db.session() as session:  # as if another loop had written something else
        row = session.get(JobVerdict, waiting)
        assert row is not None
        row.reason = "stale"
    successor = ControlLoop(db, FakeExecutor(gpus=8), Policy(), clock, lease_ttl_s=10)
    loop.release()
    assert successor.tick()
    assert "GPUs are short" in _queue(db, clock)[0].explanation.reason


def test_while_admission_is_paused_verdicts_are_kept_and_say_so(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    with db.session() as session:
        flags.set_admission_paused(session, True)
    waiting = submit(db, clock(), gpus=1)
    assert loop.tick()
    assert job(db, waiting).state == JobState.PENDING.value  # nothing acts
    shown = _queue(db, clock)
    assert shown[0].explanation.reason.startswith(queue_service.PAUSED + "fits")


def test_deep_queues_keep_verdicts_at_a_pace_their_cost_allows() -> None:
    keeper = VerdictKeeper()
    deep = EVERY_ROUND + 1
    assert keeper.due(0.0, waiting=0)  # the first round of a term always keeps
    keeper._kept, keeper._kept_at, keeper._cost_s = {1: None}, 0.0, 2.0  # type: ignore[dict-item]
    assert keeper.due(0.1, waiting=EVERY_ROUND)  # a short queue: every round
    assert not keeper.due(9.9, waiting=deep)  # 5 × a 2 s cost has not gone by
    assert keeper.due(10.0, waiting=deep)
    keeper._cost_s = 60.0
    assert keeper.due(30.0, waiting=deep)  # never older than MAX_AGE_S
    assert keeper.due(0.1, waiting=0)  # the queue emptied: clear what is left
