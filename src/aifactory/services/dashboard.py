"""What the dashboard shows: the facility's utilisation, queue and waits over a window (for
everyone: figures about the machine, not about anyone's work), and the caller's own
allocations and energy (as far as ALLOCATION_READ / USAGE_READ reach)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE, WAITING
from aifactory.domain.permissions import Action
from aifactory.domain.timeline import Interval, Window, mean_per_slice, time_weighted
from aifactory.services.allocations import list_allocations
from aifactory.services.principal import Principal
from aifactory.store.models import Job, Node, UsageRecord

SLICES = 48
GPU_S_PER_H = 3600
J_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class Gauge:
    name: str
    project: str
    used_h: float
    total_h: float


@dataclass(frozen=True, slots=True)
class Dashboard:
    now: float
    window_s: float
    gpus_total: int
    gpus_busy: int
    running: int
    waiting: int
    utilisation_pct: list[tuple[float, float]]
    queue_length: list[tuple[float, float]]
    mean_wait_min: list[tuple[float, float]]
    energy_kwh: list[tuple[str, float]]  # per day, the caller's projects
    energy_total_kwh: float
    allocations: list[Gauge]


def dashboard(session: Session, principal: Principal, *, now: float, window_s: float) -> Dashboard:
    window = Window(now - window_s, now, SLICES)
    gpus_total = session.scalar(select(func.coalesce(func.sum(Node.gpus), 0))) or 0
    active = _active(session)
    busy = [Interval(s, None, g) for s, g in active]
    busy += [Interval(s, e, g) for s, e, g in _ended_attempts(session, window.start)]
    util = time_weighted(busy, window)
    utilisation = [(t, 100.0 * v / gpus_total if gpus_total else 0.0) for t, v in util]
    waits = _waits(session, window.start)
    queue = time_weighted([Interval(s, e) for s, e in waits], window)
    started = [(e, (e - s) / 60) for s, e in waits if e is not None]
    energy = _energy_by_day(session, principal, window.start)
    return Dashboard(
        now=now,
        window_s=window_s,
        gpus_total=int(gpus_total),
        gpus_busy=sum(g for _, g in active),
        running=len(active),
        waiting=sum(1 for _, e in waits if e is None),
        utilisation_pct=utilisation,
        queue_length=queue,
        mean_wait_min=mean_per_slice(started, window),
        energy_kwh=energy,
        energy_total_kwh=sum(v for _, v in energy),
        allocations=_gauges(session, principal, now),
    )


def _active(session: Session) -> list[tuple[float, int]]:
    rows = session.execute(
        select(Job.started_at, Job.admitted_at, Job.gpus_per_node * Job.nodes).where(
            Job.state.in_([s.value for s in ACTIVE])
        )
    ).all()
    return [(started or admitted or 0.0, gpus) for started, admitted, gpus in rows]


def _ended_attempts(session: Session, since: float) -> list[tuple[float, float, int]]:
    rows = session.execute(
        select(UsageRecord.started_at, UsageRecord.ended_at, UsageRecord.gpus).where(
            UsageRecord.ended_at >= since
        )
    ).all()
    return [(s, e, g) for s, e, g in rows]


def _waits(session: Session, since: float) -> list[tuple[float, float | None]]:
    """(submitted, left the queue) of every job that waited in the window (None: still waits)."""
    rows = session.execute(
        select(Job.submitted_at, Job.admitted_at, Job.ended_at, Job.state).where(
            or_(
                Job.state.in_([s.value for s in WAITING]),
                Job.admitted_at >= since,
                Job.submitted_at >= since,
            )
        )
    ).all()
    found: list[tuple[float, float | None]] = []
    for submitted, admitted, ended, state in rows:
        left = None if state in WAITING else admitted if admitted is not None else ended
        found.append((submitted, left))
    return found


def _energy_by_day(session: Session, principal: Principal, since: float) -> list[tuple[str, float]]:
    stmt = (
        select(UsageRecord.ended_at, UsageRecord.energy_j)
        .where(UsageRecord.ended_at >= since)
        .order_by(UsageRecord.ended_at)
    )
    projects = principal.projects_for(Action.USAGE_READ)
    if projects is not None:
        stmt = stmt.where(UsageRecord.project_id.in_(projects))
    days: dict[str, float] = {}
    for ended, joules in session.execute(stmt):
        day = datetime.fromtimestamp(ended, UTC).strftime("%d %b")
        days[day] = days.get(day, 0.0) + joules / J_PER_KWH
    return list(days.items())


def _gauges(session: Session, principal: Principal, now: float) -> list[Gauge]:
    if principal.projects_for(Action.ALLOCATION_READ) is None and not principal.memberships:
        return []  # staff see every allocation on its own page; the dashboard shows one's own
    views = list_allocations(session, principal, now=now)
    return [
        Gauge(
            v.allocation.name,
            v.project,
            v.balance.used / GPU_S_PER_H,
            (v.balance.awarded + v.balance.adjusted) / GPU_S_PER_H,
        )
        for v in views
        if v.active and v.allocation.project_id in principal.memberships
    ]
