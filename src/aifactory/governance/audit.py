"""The audit log in the store: appending events to the hash chain, reading them, verifying it.

Invariants:
- An event is appended in the same transaction as the action it records: a rolled-back action
  leaves no event, a committed one always has one. An action that fails before it can commit
  (a failed login, a refused request) is recorded in a short transaction of its own
  (`record_apart`), as is a read that is itself worth recording (an export).
- Appends lock the one `audit_head` row (PostgreSQL: SELECT … FOR UPDATE; SQLite has one writer
  anyway) and move it in the same transaction, so concurrent writers take turns, `seq` has no
  gaps and the chain stays one line.
- Record last: the head stays locked until the transaction ends, so a service takes every other
  lock it needs before it records (no lock is ever waited for while holding the head).

The chain's rules (canonical form, hash, check) are pure, in `domain.audit`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, Table, insert, select, update
from sqlalchemy.orm import Session

from aifactory.domain.audit import AuditRecord, ChainCheck, Outcome, check_chain, event_hash
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, AuditHead

EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
HEAD: Table = AuditHead.__table__  # type: ignore[assignment]
HEAD_ID = 1
BATCH = 1000  # events read per query when walking the log
RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))


@dataclass(frozen=True, slots=True)
class NewEvent:
    """What a caller says about one event; the log adds seq, time and the hashes."""

    actor: str
    action: str
    object: str
    source: str | None = None
    outcome: str = Outcome.OK
    project_id: int | None = None
    detail: dict[str, Any] | None = None  # JSON values, string keys


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object: str,
    at: float,
    source: str | None = None,
    outcome: str = Outcome.OK,
    project_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event in `session`'s transaction."""
    append(session, [NewEvent(actor, action, object, source, outcome, project_id, detail)], at=at)


def record_apart(db: Database, *, at: float, **event: Any) -> None:
    """Append one event in a short transaction of its own (see the module's invariants)."""
    with db.session() as session:
        record(session, at=at, **event)


def append(session: Session, events: Sequence[NewEvent], *, at: float) -> None:
    """Append `events` in order, with one lock, one bulk insert and one head update."""
    if not events:
        return
    conn = session.connection()
    locked = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == HEAD_ID).with_for_update()
    seq, prev_hash = conn.execute(locked).one()
    rows = []
    for event in events:
        seq += 1
        row = _row(event, seq=seq, at=at, prev_hash=prev_hash)
        prev_hash = row["hash"]
        rows.append(row)
    conn.execute(insert(EVENTS), rows)
    conn.execute(update(HEAD).where(HEAD.c.id == HEAD_ID).values(seq=seq, hash=prev_hash))


def _row(event: NewEvent, *, seq: int, at: float, prev_hash: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": event.actor,
        "action": event.action,
        "object": event.object,
        "project_id": event.project_id,
        "source": event.source,
        "outcome": str(event.outcome),
        "detail": event.detail or {},
        "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(**row)
    return row


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    actor: str | None = None
    object: str | None = None
    action: str | None = None
    since: float | None = None  # inclusive
    until: float | None = None  # exclusive
    after_seq: int | None = None


def query(filters: Filters, projects: Sequence[int] | None) -> Select[AuditEvent]:
    """Events matching `filters`, oldest first; `projects`: only those projects' (None: all)."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq)
    if filters.actor is not None:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.object is not None:
        stmt = stmt.where(AuditEvent.object == filters.object)
    if filters.action is not None:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.at < filters.until)
    if filters.after_seq is not None:
        stmt = stmt.where(AuditEvent.seq > filters.after_seq)
    if projects is not None:
        stmt = stmt.where(AuditEvent.project_id.in_(list(projects)))
    return stmt


def events(
    session: Session, filters: Filters, projects: Sequence[int] | None, *, limit: int
) -> list[AuditEvent]:
    return list(session.scalars(query(filters, projects).limit(limit)))


def stream(
    db: Database, filters: Filters, projects: Sequence[int] | None, *, batch: int = BATCH
) -> Iterator[AuditEvent]:
    """Every matching event, read `batch` at a time in one read transaction of its own."""
    with db.read() as session:
        after = filters.after_seq or 0
        while True:
            found = events(session, _after(filters, after), projects, limit=batch)
            yield from found
            if len(found) < batch:
                return
            after = found[-1].seq


def _after(filters: Filters, seq: int) -> Filters:
    return Filters(filters.actor, filters.object, filters.action, filters.since, filters.until, seq)


# ---- verifying -------------------------------------------------------------------------------


def verify(session: Session, *, batch: int = BATCH) -> ChainCheck:
    """Walk the whole chain in seq order, `batch` events at a time, up to the head as it was
    read first (events appended meanwhile are for the next walk)."""
    head_seq, head_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one()
    stored = _stored(session, upto=head_seq, batch=batch)
    return check_chain(stored, head=(head_seq, head_hash))


def _stored(session: Session, *, upto: int, batch: int) -> Iterator[AuditRecord]:
    after = 0
    while True:
        rows = session.execute(
            select(EVENTS)
            .where(EVENTS.c.seq > after, EVENTS.c.seq <= upto)
            .order_by(EVENTS.c.seq)
            .limit(batch)
        ).all()
        for row in rows:
            yield as_record(row._mapping)
        if len(rows) < batch:
            return
        after = rows[-1].seq


def as_record(row: Mapping[Any, Any]) -> AuditRecord:
    """A stored event (a row of `audit_events`) as the domain sees it."""
    return AuditRecord(**{name: row[name] for name in RECORD_FIELDS})
