"""The audit log in a real database (SQLite and PostgreSQL): events are appended in the
action's own transaction, tampering with stored rows is found by `verify`, and concurrent
writers on PostgreSQL keep one chain."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select, text

from aifactory.governance import audit
from aifactory.governance.audit import Filters, NewEvent
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, Organisation

T0 = 1_700_000_000.125


def append_some(db: Database, count: int, *, actor: str = "alice") -> None:
    for n in range(count):
        with db.session() as session:
            audit.record(
                session,
                actor=actor,
                action="job.submit",
                object=f"job:{n}",
                at=T0 + n,
                source="10.1.2.3",
                project_id=1 + n % 2,
                detail={"n": n, "text": "ünïcode"},
            )


def verify(db: Database) -> audit.ChainCheck:
    with db.read() as session:
        return audit.verify(session)


def test_an_empty_log_is_intact(db: Database) -> None:
    assert verify(db) == audit.ChainCheck(True, 0)


def test_events_are_numbered_from_one_and_chained(db: Database) -> None:
    append_some(db, 3)
    with db.session() as session:
        audit.append(
            session,
            [NewEvent("bob", "job.submit", f"job:{n}", project_id=2) for n in range(3)],
            at=T0 + 10,
        )
    with db.read() as session:
        rows = audit.events(session, Filters(), None, limit=100)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert verify(db).ok
    assert verify(db).checked == 6


def test_an_event_is_part_of_its_actions_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Organisation(name="gone", kind="university", created_at=T0))
        audit.record(session, actor="admin", action="organisation.create", object="o", at=T0)
        raise RuntimeError("the action fails after its event was recorded")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    append_some(db, 1)
    with db.read() as session:
        assert [e.seq for e in audit.events(session, Filters(), None, limit=10)] == [1]
    assert verify(db).ok


def test_reads_filter_by_actor_object_action_time_and_project(db: Database) -> None:
    append_some(db, 4, actor="alice")
    append_some(db, 2, actor="bob")
    with db.read() as session:

        def seqs(filters: Filters, projects: list[int] | None = None) -> list[int]:
            return [e.seq for e in audit.events(session, filters, projects, limit=100)]

        assert seqs(Filters(actor="bob")) == [5, 6]
        assert seqs(Filters(object="job:1")) == [2, 6]
        assert seqs(Filters(action="job.submit", after_seq=4)) == [5, 6]
        assert seqs(Filters(since=T0 + 1, until=T0 + 3)) == [2, 3, 6]
        assert seqs(Filters(), projects=[2]) == [2, 4, 6]
        assert seqs(Filters(), projects=[]) == []
    assert [e.seq for e in audit.stream(db, Filters(actor="alice"), None)] == [1, 2, 3, 4]


def test_a_changed_row_is_found_at_its_seq(db: Database) -> None:
    append_some(db, 5)
    with db.write_engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    found = verify(db)
    assert (found.ok, found.first_bad_seq, found.checked) == (False, 3, 2)
    assert "changed" in (found.reason or "")


def test_a_deleted_row_is_found_at_its_seq(db: Database) -> None:
    append_some(db, 5)
    with db.write_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    found = verify(db)
    assert (found.ok, found.first_bad_seq) == (False, 2)
    assert "missing" in (found.reason or "")


def test_a_cut_off_tail_is_found(db: Database) -> None:
    append_some(db, 4)
    with db.write_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    assert (verify(db).ok, verify(db).first_bad_seq) == (False, 4)


def test_the_log_is_walked_in_batches(db: Database) -> None:
    append_some(db, 7)
    with db.read() as session:
        assert audit.verify(session, batch=3).checked == 7
    assert [e.seq for e in audit.stream(db, Filters(), None, batch=3)] == list(range(1, 8))


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite writers never race
def test_concurrent_writers_keep_one_chain(db: Database) -> None:
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            barrier.wait()
            append_some(db, 25, actor=name)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    found = verify(db)
    assert (found.ok, found.checked) == (True, 100), found
