"""What the dashboard shows: the facility's utilisation, queue and waits over a window (for
everyone: figures about the machine, not about anyone's work), and the caller's own
allocations and energy (as far as ALLOCATION_READ / USAGE_READ reach).

Every series is grouped by time slice in SQL (the control loop's minute samples, jobs by their
admission time, usage by the day it ended), so a page costs the same on 100 or 100,000 jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, cast, func, literal, select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE, WAITING
from aifactory.domain.permissions import Action
from aifactory.domain.timeline import Window
from aifactory.services.allocations import list_allocations
from aifactory.services.principal import Principal
from aifactory.store.models import FacilitySample, Job, Node, UsageRecord
from aifactory.store.sql import floor_div

SLICES = 48
GPU_S_PER_H = 3600
J_PER_KWH = 3.6e6
DAY_S = 86400.0


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
    window = Window(_since(session, now - window_s, now), now, SLICES)
    busy, running = session.execute(
        select(func.coalesce(func.sum(Job.gpus_per_node * Job.nodes), 0), func.count()).where(
            Job.state.in_([s.value for s in ACTIVE])
        )
    ).one()
    waiting = session.scalar(select(func.count()).where(Job.state.in_([s.value for s in WAITING])))
    total = session.scalar(select(func.coalesce(func.sum(Node.gpus), 0)).where(Node.schedulable))
    utilisation, queue = _sampled(session, window)
    energy = _energy_by_day(session, principal, window.start)
    return Dashboard(
        now=now,
        window_s=window_s,
        gpus_total=int(total or 0),
        gpus_busy=int(busy),
        running=int(running),
        waiting=int(waiting or 0),
        utilisation_pct=utilisation,
        queue_length=queue,
        mean_wait_min=_waits(session, window),
        energy_kwh=energy,
        energy_total_kwh=sum(v for _, v in energy),
        allocations=_gauges(session, principal, now),
    )


def _since(session: Session, start: float, now: float) -> float:
    """The window's start, or the first sample after it: a facility younger than the window
    gets its slices over the time it has been running, not one slice at the end."""
    first = session.scalar(select(func.min(FacilitySample.at)).where(FacilitySample.at >= start))
    if first is None or first >= now:
        return start
    return max(start, float(first))


def _slice(window: Window, column: object) -> floor_div:
    return floor_div(column, literal(window.start, Float), literal(window.width, Float))


def _sampled(
    session: Session, window: Window
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    index = _slice(window, FacilitySample.at).label("slice")
    rows = session.execute(
        select(
            index,
            func.sum(FacilitySample.gpus_busy),
            func.sum(FacilitySample.gpus_total),
            func.avg(cast(FacilitySample.waiting, Float)),
        )
        .where(FacilitySample.at >= window.start, FacilitySample.at < window.end)
        .group_by(index)
    ).all()
    utilisation = window.points(
        (i, 100.0 * busy / total if total else 0.0) for i, busy, total, _ in rows
    )
    queue = window.points((i, float(waiting)) for i, _, _, waiting in rows)
    return utilisation, queue


def _waits(session: Session, window: Window) -> list[tuple[float, float]]:
    """Mean wait (minutes) of the jobs that left the queue for a node in each slice."""
    index = _slice(window, Job.admitted_at).label("slice")
    rows = session.execute(
        select(index, func.avg(Job.admitted_at - Job.submitted_at))
        .where(Job.admitted_at >= window.start, Job.admitted_at < window.end)
        .group_by(index)
    ).all()
    return window.points((i, float(wait) / 60) for i, wait in rows)


def _energy_by_day(session: Session, principal: Principal, since: float) -> list[tuple[str, float]]:
    day = floor_div(UsageRecord.ended_at, literal(0.0, Float), literal(DAY_S, Float)).label("day")
    stmt = select(day, func.sum(UsageRecord.energy_j)).where(UsageRecord.ended_at >= since)
    projects = principal.projects_for(Action.USAGE_READ)
    if projects is not None:
        stmt = stmt.where(UsageRecord.project_id.in_(projects))
    rows = session.execute(stmt.group_by(day).order_by(day)).all()
    return [
        (datetime.fromtimestamp(d * DAY_S, UTC).strftime("%d %b"), float(j) / J_PER_KWH)
        for d, j in rows
    ]


def _gauges(session: Session, principal: Principal, now: float) -> list[Gauge]:
    if not principal.memberships:
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
