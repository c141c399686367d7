"""Once a minute, a sample of the facility (GPUs busy and in all, jobs running and waiting),
for the dashboard's charts. Run by the acting control loop only (its housekeeping), so one
row per minute whatever the number of API workers. Samples older than the dashboard's longest
window are deleted (once an hour)."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from aifactory.domain.jobs import ACTIVE, WAITING
from aifactory.store.db import Database
from aifactory.store.models import FacilitySample, Job, Node

EVERY_S = 60.0
KEEP_S = 35 * 86400.0  # the dashboard's longest window is 30 days
PURGE_EVERY_S = 3600.0


class Sampler:
    def __init__(self, db: Database, every_s: float = EVERY_S) -> None:
        self.db = db
        self.every_s = every_s
        self._last = -1.0
        self._purged = -1.0

    def __call__(self, now: float) -> None:
        if now - self._last < self.every_s:
            return
        self._last = now
        active = [s.value for s in ACTIVE]
        with self.db.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(Node.gpus), 0)).where(Node.schedulable)
            )
            busy, running = session.execute(
                select(
                    func.coalesce(func.sum(Job.gpus_per_node * Job.nodes), 0), func.count()
                ).where(Job.state.in_(active))
            ).one()
            waiting = session.scalar(
                select(func.count()).where(Job.state.in_([s.value for s in WAITING]))
            )
            if now - self._purged >= PURGE_EVERY_S:
                self._purged = now
                session.execute(delete(FacilitySample).where(FacilitySample.at < now - KEEP_S))
            session.merge(
                FacilitySample(
                    at=now,
                    gpus_total=int(total or 0),
                    gpus_busy=int(busy),
                    running=int(running),
                    waiting=int(waiting or 0),
                )
            )
