"""Maintenance windows: operators announce them, everyone sees them, the scheduler keeps them.

A window takes named nodes (or every node, "*") out of service from one moment to another;
the rule it puts on scheduling is scheduler.maintenance's. Creating one (Action.NODE_DRAIN,
the operators who drain nodes) is audited and announced in the same transaction: everyone with
work on the facility (a job waiting, held or running) is notified through the outbox, and the
portal and CLI show upcoming windows to all. The answer tells the operator which running jobs
would, by their limits, still be running when the window begins: the scheduler does not stop
them, the operator decides. Calling a window off is audited and announced the same way, to
those told of it and those with work then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain import notices
from aifactory.domain.jobs import ACTIVE, WAITING
from aifactory.domain.node_health import reason_problem
from aifactory.domain.permissions import Action
from aifactory.domain.placement import placement_of
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.store import outbox
from aifactory.store.maintenance import EVERY_NODE
from aifactory.store.models import Job, MaintenanceWindow, Node, OutboxNotification

LONGEST_S = 31 * 24 * 3600.0  # a longer outage is a decommissioning: drain the nodes
FURTHEST_S = 366 * 24 * 3600.0  # planned at most a year ahead
MAX_LISTED = 500
PAST_SLACK_S = 300.0  # "from now" typed a minute ago is still now
ANNOUNCE_AHEAD_S = 14 * 24 * 3600.0  # the portal's banner shows windows this close


@dataclass(frozen=True, slots=True)
class AffectedJob:
    """A running job whose limit reaches into the window: the operator's to decide."""

    job_id: int
    nodes: tuple[str, ...]
    limit_ends_at: float


@dataclass(frozen=True, slots=True)
class WindowView:
    id: int
    nodes: tuple[str, ...]  # ("*",): every node
    begins_at: float
    ends_at: float
    reason: str
    created_by: str
    created_at: float
    cancelled_by: str | None
    cancelled_at: float | None
    state: str  # upcoming | active | over | cancelled
    affected: tuple[AffectedJob, ...] = ()  # only in the answer to create
    notified: int = 0  # deliveries queued by create/cancel

    @property
    def all_nodes(self) -> bool:
        return EVERY_NODE in self.nodes


def create(
    session: Session,
    principal: Principal,
    *,
    nodes: Sequence[str] | None,
    begins_at: float,
    ends_at: float,
    reason: str,
    now: float,
) -> WindowView:
    """`nodes` None: every node."""
    principal.authorize(Action.NODE_DRAIN)
    reason = _checked(begins_at, ends_at, reason, now)
    chosen = _known_nodes(session, nodes)
    row = MaintenanceWindow(
        nodes=list(chosen),
        begins_at=begins_at,
        ends_at=ends_at,
        reason=reason,
        created_by=principal.name,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="maintenance.create",
        object=f"maintenance:{row.id}",
        at=now,
        source=principal.source,
        detail={"nodes": list(chosen), "begins_at": begins_at, "ends_at": ends_at},
    )
    notified = _announce(session, row, now=now)
    return _view(row, now, affected=_affected(session, row), notified=notified)


def cancel(session: Session, principal: Principal, window_id: int, *, now: float) -> WindowView:
    """Call a window off (one not over yet); its announcement is withdrawn the same way."""
    principal.authorize(Action.NODE_DRAIN)
    row = session.get(MaintenanceWindow, window_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no maintenance window {window_id}", field="window")
    if row.cancelled_at is not None:
        return _view(row, now)
    if row.ends_at <= now:
        raise Conflict(f"maintenance window {window_id} is over already", field="window")
    row.cancelled_by, row.cancelled_at = principal.name, now
    audit.record(
        session,
        actor=principal.name,
        action="maintenance.cancel",
        object=f"maintenance:{row.id}",
        at=now,
        source=principal.source,
    )
    return _view(row, now, notified=_announce(session, row, now=now, cancelled=True))


def listed(
    session: Session, principal: Principal, *, now: float, everything: bool = False
) -> list[WindowView]:
    """Windows not over and not called off, soonest first; `everything`: all (the newest
    `MAX_LISTED`), newest first.
    Anyone signed in may see them (they are announcements)."""
    del principal
    if everything:
        stmt = select(MaintenanceWindow).order_by(MaintenanceWindow.id.desc()).limit(MAX_LISTED)
    else:
        stmt = (
            select(MaintenanceWindow)
            .where(MaintenanceWindow.ends_at > now, MaintenanceWindow.cancelled_at.is_(None))
            .order_by(MaintenanceWindow.begins_at, MaintenanceWindow.id)
        )
    return [_view(row, now) for row in session.scalars(stmt)]


def announced(session: Session, *, now: float) -> list[WindowView]:
    """What every page's banner shows: windows on now or beginning within two weeks."""
    rows = session.scalars(
        select(MaintenanceWindow)
        .where(
            MaintenanceWindow.ends_at > now,
            MaintenanceWindow.begins_at <= now + ANNOUNCE_AHEAD_S,
            MaintenanceWindow.cancelled_at.is_(None),
        )
        .order_by(MaintenanceWindow.begins_at, MaintenanceWindow.id)
    )
    return [_view(row, now) for row in rows]


def moment(at: float) -> str:
    """How a window's times are written for people: in UTC, to the minute."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def nodes_text(nodes: Sequence[str]) -> str:
    if EVERY_NODE in nodes:
        return "all nodes"
    return f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(nodes)}"


# ---- helpers ------------------------------------------------------------------------------
def _checked(begins_at: float, ends_at: float, reason: str, now: float) -> str:
    if begins_at < now - PAST_SLACK_S:
        raise InvalidInput("a window cannot begin in the past", field="begins_at")
    if begins_at > now + FURTHEST_S:
        raise InvalidInput("a window is planned at most a year ahead", field="begins_at")
    if ends_at <= max(begins_at, now):
        raise InvalidInput("a window must end after it begins, and after now", field="ends_at")
    if ends_at - begins_at > LONGEST_S:
        raise InvalidInput(
            "a window lasts at most 31 days; for longer, drain the nodes", field="ends_at"
        )
    problem = reason_problem(reason)
    if problem is not None:
        raise InvalidInput(problem, field="reason")
    return reason.strip()


def _known_nodes(session: Session, nodes: Sequence[str] | None) -> tuple[str, ...]:
    if nodes is None:
        return (EVERY_NODE,)
    wanted = sorted(set(nodes))
    if not wanted:
        raise InvalidInput("name at least one node, or every node", field="nodes")
    known = set(session.scalars(select(Node.id).where(Node.id.in_(wanted))))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise InvalidInput(f"no such node: {', '.join(unknown)}", field="nodes")
    return tuple(wanted)


def _announce(
    session: Session, row: MaintenanceWindow, *, now: float, cancelled: bool = False
) -> int:
    """Everyone with work on the facility now hears of it (the portal shows it to all); that
    it is called off, also everyone who was told of it."""
    owners = set(
        session.scalars(
            select(Job.user_id)
            .where(Job.state.in_([s.value for s in (*ACTIVE, *WAITING)]))
            .distinct()
        )
    )
    if cancelled:
        told = f"{notices.maintenance_key(row.id)}/%"
        owners.update(
            session.scalars(
                select(OutboxNotification.user_id).where(OutboxNotification.delivery_key.like(told))
            )
        )
    notice = notices.maintenance(
        row.id,
        nodes_text(row.nodes),
        moment(row.begins_at),
        moment(row.ends_at),
        row.reason,
        cancelled=cancelled,
    )
    return outbox.notify(session, notice, sorted(owners), now=now)


def _affected(session: Session, row: MaintenanceWindow) -> tuple[AffectedJob, ...]:
    """Running jobs on the window's nodes whose limit ends after it begins."""
    jobs = session.execute(
        select(Job.id, Job.placement, Job.started_at, Job.admitted_at, Job.time_limit_s).where(
            Job.state.in_([s.value for s in ACTIVE])
        )
    )
    found = []
    for job_id, placement, started_at, admitted_at, limit in jobs:
        on = sorted(placement_of(placement))
        if EVERY_NODE not in row.nodes:
            on = [n for n in on if n in row.nodes]
        start = started_at if started_at is not None else admitted_at
        limit_end = (start or row.created_at) + limit
        if on and limit_end > row.begins_at:
            found.append(AffectedJob(job_id, tuple(on), limit_end))
    return tuple(found)


def _view(
    row: MaintenanceWindow,
    now: float,
    *,
    affected: tuple[AffectedJob, ...] = (),
    notified: int = 0,
) -> WindowView:
    return WindowView(
        row.id,
        tuple(row.nodes),
        row.begins_at,
        row.ends_at,
        row.reason,
        row.created_by,
        row.created_at,
        row.cancelled_by,
        row.cancelled_at,
        _state(row, now),
        affected,
        notified,
    )


def _state(row: MaintenanceWindow, now: float) -> str:
    if row.cancelled_at is not None:
        return "cancelled"
    if now >= row.ends_at:
        return "over"
    return "active" if now >= row.begins_at else "upcoming"
