"""The health check: every `every_s`, ask the executor's probe about its nodes, keep what it
found, and drain a failing node or resume a recovered one (domain.node_health.after_checkup).

Run by the acting control loop only (its housekeeping). Probe → apply: the probe runs outside
any session (NVML, disk, scontrol), then one short write transaction applies every checkup,
each row locked and read afresh, so an operator's drain that came in between is seen and kept.
A probe that fails is logged and changes nothing: an unreachable Slurm controller is not a
reason to drain (or resume) every node.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from aifactory.control import drains
from aifactory.domain.node_health import HEALTH, Checkup, Step, after_checkup
from aifactory.executors.health import HealthProbe
from aifactory.store.db import Database
from aifactory.store.models import Node

log = logging.getLogger("aifactory.health")
EVERY_S = 30.0


class HealthCheck:
    def __init__(self, db: Database, probe: HealthProbe, every_s: float = EVERY_S) -> None:
        self.db = db
        self.probe = probe
        self.every_s = every_s
        self._last = float("-inf")

    def __call__(self, now: float) -> None:
        if now - self._last < self.every_s:
            return
        self._last = now
        try:
            checkups = self.probe.check()
        except Exception:
            log.exception("the node health probe failed; nodes are left as they are")
            return
        with self.db.session() as session:
            for checkup in checkups:
                row = session.get(Node, checkup.node_id, with_for_update=True)
                if row is not None:
                    _apply(session, row, checkup, now)


def _apply(session: Session, row: Node, checkup: Checkup, now: float) -> None:
    row.health_problem, row.health_checked_at = checkup.problem, now
    step = after_checkup(drains.drain_of(row), checkup)
    if step is Step.DRAIN and checkup.problem is not None:
        log.warning("node %s fails its health check, drained: %s", row.id, checkup.problem)
        drains.drain(session, row, reason=checkup.problem, by=HEALTH, now=now)
    elif step is Step.RESUME:
        log.info("node %s passes its health check again, resumed", row.id)
        drains.resume(session, row, by=HEALTH, now=now)
