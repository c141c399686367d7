"""Maintenance windows as the scheduler reads them (services.maintenance writes them)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.scheduler.maintenance import Window
from aifactory.store.models import MaintenanceWindow

EVERY_NODE = "*"  # a window's nodes: every node, those added later too


def in_force(session: Session, now: float, node_ids: Sequence[str]) -> tuple[Window, ...]:
    """The windows the scheduler keeps now: not over, not called off, "*" made concrete."""
    rows = session.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.ends_at > now, MaintenanceWindow.cancelled_at.is_(None)
        )
    )
    return tuple(
        Window(
            frozenset(node_ids) if EVERY_NODE in row.nodes else frozenset(row.nodes),
            row.begins_at,
            row.ends_at,
            row.reason,
            row.id,
        )
        for row in rows
    )
