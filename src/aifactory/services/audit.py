"""Who reads the audit log, and how much of it.

Admins and auditors read and verify the whole log. A project's owners and members read the
events about their projects (those with the project's id); viewers and everyone else are
refused (403): domain.permissions, AUDIT_READ and AUDIT_VERIFY. Reading is never recorded, but
an export of money or usage data is (`record_read`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from aifactory.domain.audit import ChainCheck
from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.governance.audit import Filters
from aifactory.services.principal import Principal
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent


def readable_projects(principal: Principal) -> list[int] | None:
    """The projects whose events `principal` may read; None: every event."""
    projects = principal.projects_for(Action.AUDIT_READ)
    if projects == []:
        principal.authorize(Action.AUDIT_READ)  # refused, saying who may
    return projects


def list_events(
    session: Session, principal: Principal, filters: Filters, *, limit: int
) -> list[AuditEvent]:
    return audit.events(session, filters, readable_projects(principal), limit=limit)


def export_events(db: Database, principal: Principal, filters: Filters) -> Iterator[AuditEvent]:
    """Checks who may read now, then streams the events in a read transaction of its own."""
    return audit.stream(db, filters, readable_projects(principal))


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
