"""Who reads the audit log, and how much of it.

Admins and auditors read and verify the whole log. A project's owners and members read the
events about their projects (those with the project's id); viewers and everyone else are
refused (403): domain.permissions, AUDIT_READ and AUDIT_VERIFY. Reading is never recorded, but
an export of money or usage data is (`record_read`).

Events leave here as the domain's `AuditRecord` (never the stored row). The portal reads a page
at a time, newest first (`events_page`): one indexed range of `seq` before or after a cursor,
LIMIT one page, so a page costs the same on a log of any length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from aifactory.domain.audit import AuditRecord, ChainCheck
from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.governance.audit import Filters as Filters  # the faces' filters, from here
from aifactory.services.principal import Principal
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent


def readable_projects(principal: Principal) -> list[int] | None:
    """The projects whose events `principal` may read; None: every event."""
    projects = principal.projects_for(Action.AUDIT_READ)
    if projects == []:
        principal.authorize(Action.AUDIT_READ)  # refused, saying who may
    return projects


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[AuditRecord]  # newest first
    newer: int | None  # the cursor for the page of newer events (None: this is the newest)
    older: int | None  # the cursor for the page of older events (None: nothing older)


def list_events(
    session: Session, principal: Principal, filters: Filters, *, limit: int
) -> list[AuditRecord]:
    """The events `principal` may read that match, oldest first (from `filters.after_seq`)."""
    found = audit.events(session, filters, readable_projects(principal), limit=limit)
    return [record_of(event) for event in found]


def export_events(db: Database, principal: Principal, filters: Filters) -> Iterator[AuditRecord]:
    """Checks who may read now, then streams the events in a read transaction of its own."""
    found = audit.stream(db, filters, readable_projects(principal))
    return (record_of(event) for event in found)


def events_page(
    session: Session,
    principal: Principal,
    filters: Filters,
    *,
    before: int | None,
    after: int | None,
    limit: int,
) -> EventPage:
    """One page of the events `principal` may read that match, newest first: the `limit` just
    older than `before`, or just newer than `after`, or else the newest."""
    stmt = audit.query(filters, readable_projects(principal))
    if after is not None:  # the page just newer than `after`: read upwards, show newest first
        rows = list(session.scalars(stmt.where(AuditEvent.seq > after).limit(limit + 1)))
        events = [record_of(event) for event in reversed(rows[:limit])]
        return _cursors(events, more_newer=len(rows) > limit, more_older=True)
    newest_first = stmt.order_by(None).order_by(AuditEvent.seq.desc())
    if before is not None:
        newest_first = newest_first.where(AuditEvent.seq < before)
    rows = list(session.scalars(newest_first.limit(limit + 1)))
    events = [record_of(event) for event in rows[:limit]]
    return _cursors(events, more_newer=before is not None, more_older=len(rows) > limit)


def _cursors(events: list[AuditRecord], *, more_newer: bool, more_older: bool) -> EventPage:
    if not events:
        return EventPage(events, None, None)
    return EventPage(
        events,
        newer=events[0].seq if more_newer else None,
        older=events[-1].seq if more_older else None,
    )


def record_of(event: AuditEvent) -> AuditRecord:
    """A stored event as the domain sees it, hash included."""
    return AuditRecord(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        object=event.object,
        project_id=event.project_id,
        source=event.source,
        outcome=event.outcome,
        detail=event.detail,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def verify(session: Session, principal: Principal) -> ChainCheck:
    principal.authorize(Action.AUDIT_VERIFY)
    return audit.verify(session)


def record_read(
    db: Database,
    principal: Principal,
    *,
    action: str,
    object: str,
    now: float,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a read worth recording (an export), after it succeeded, in its own transaction."""
    audit.record_apart(
        db,
        actor=principal.name,
        action=action,
        object=object,
        at=now,
        source=principal.source,
        detail=detail,
    )
