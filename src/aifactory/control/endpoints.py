"""The endpoints' autoscaler, on the acting control loop: each `every_s`, for every endpoint,
read its replicas and its load (one short transaction), decide (domain.autoscale.scale, pure)
and apply in the same transaction: submit replicas, mark one draining, withdraw drained ones.

Replicas are ordinary jobs, so what they do from there is the scheduler's and the executor's;
a crash between two rounds loses nothing (the next round reads the store again), and a round
that runs twice decides the same (it starts only what is missing).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from aifactory.domain.autoscale import FAILURE_WINDOW_S, Bounds, Load, ReplicaNow, scale
from aifactory.domain.jobs import ACTIVE, TERMINAL, JobState
from aifactory.errors import AifactoryError
from aifactory.governance import audit
from aifactory.services.auth import principal_of
from aifactory.services.endpoints import submit_replicas
from aifactory.services.jobs import withdraw
from aifactory.store.db import Database
from aifactory.store.models import Endpoint, InferenceUsage, Job, Project, User

log = logging.getLogger("aifactory.endpoints")
SHORT_WINDOW_S = 60.0
ROTATE_S = 600.0  # a replica's successor is started this long before its time limit (at most)
LONG_EVERY_S = 30.0  # a longer window (up to an endpoint's idle time: days) is summed this often
ACTOR = "autoscaler"


class EndpointScaler:
    def __init__(self, db: Database, jobs_dir: Path, *, every_s: float = 1.0) -> None:
        self.db = db
        self.jobs_dir = jobs_dir
        self.every_s = every_s
        self._last = float("-inf")
        self._sums: Sums = {}

    def __call__(self, now: float) -> None:
        if now - self._last < self.every_s:
            return
        self._last = now
        with self.db.session() as session:
            scale_endpoints(session, jobs_dir=self.jobs_dir, now=now, sums=self._sums)


Sums = dict[float, tuple[float, dict[int, float]]]  # window → (summed at, busy s by endpoint)


def scale_endpoints(
    session: Session, *, jobs_dir: Path, now: float, sums: Sums | None = None
) -> None:
    """`sums`: the long windows' sums of earlier rounds, kept by the caller (EndpointScaler)."""
    endpoints = list(session.scalars(select(Endpoint).where(Endpoint.deleted_at.is_(None))))
    if not endpoints:
        return
    ids = [e.id for e in endpoints]
    replicas = _replicas(session, ids)
    loads = _loads(session, endpoints, now, {} if sums is None else sums)
    for endpoint in endpoints:
        try:
            _scale_one(session, endpoint, replicas[endpoint.id], loads[endpoint.id], jobs_dir, now)
        except AifactoryError as refused:  # e.g. its creator is no longer in the project
            endpoint.trouble = f"cannot start a replica: {refused}"
            log.warning("endpoint %s: %s", endpoint.name, endpoint.trouble)


def _scale_one(
    session: Session,
    endpoint: Endpoint,
    jobs: list[Job],
    load: Load,
    jobs_dir: Path,
    now: float,
) -> None:
    bounds = Bounds(
        endpoint.min_replicas,
        endpoint.max_replicas,
        endpoint.concurrency,
        endpoint.idle_timeout_s,
        rotate_s=min(ROTATE_S, endpoint.time_limit_s / 10),
    )
    draining = {int(k): float(v) for k, v in (endpoint.draining or {}).items()}
    live = [  # one asked to stop is on its way out: neither counted nor drained again
        ReplicaNow(
            j.id,
            JobState(j.state) in ACTIVE,
            j.preemptible,
            draining.get(j.id),
            j.started_at + j.time_limit_s if j.started_at is not None else None,
        )
        for j in jobs
        if not j.cancel_requested
    ]
    decided = scale(bounds, live, load, now)
    if decided.trouble != endpoint.trouble and (decided.trouble or not decided.start):
        endpoint.trouble = decided.trouble
    for job_id in decided.stop:
        job = session.get(Job, job_id)
        if job is not None and JobState(job.state) not in TERMINAL:
            withdraw(session, job, actor=ACTOR, now=now)
        draining.pop(job_id, None)
    for job_id in decided.drain:
        draining[job_id] = now
    draining = {j: t for j, t in draining.items() if any(r.job_id == j for r in live)}
    if draining != {int(k): v for k, v in (endpoint.draining or {}).items()}:
        endpoint.draining = {str(j): t for j, t in draining.items()}
    if decided.start:
        _start(session, endpoint, list(decided.start), jobs_dir, now)
        endpoint.trouble = None
    if decided.start or decided.drain or decided.stop:
        audit.record(
            session,
            actor=ACTOR,
            action="endpoint.scale",
            object=f"endpoint:{endpoint.name}",
            project_id=endpoint.project_id,
            detail={
                "wanted": decided.wanted,
                "started": len(decided.start),
                "draining": list(decided.drain),
                "stopped": list(decided.stop),
            },
            at=now,
        )


def _start(
    session: Session, endpoint: Endpoint, preemptible: list[bool], jobs_dir: Path, now: float
) -> None:
    creator = session.scalars(select(User).where(User.name == endpoint.created_by)).first()
    owner = session.get(Project, endpoint.project_id)
    if creator is None or owner is None:
        raise AifactoryError(f"its creator {endpoint.created_by} is gone")
    principal = principal_of(session, creator)
    submit_replicas(session, principal, endpoint, owner, preemptible, jobs_dir=jobs_dir, now=now)


def _replicas(session: Session, endpoint_ids: list[int]) -> dict[int, list[Job]]:
    """Each endpoint's replicas that have not ended, oldest first."""
    found: dict[int, list[Job]] = defaultdict(list)
    stmt = (
        select(Job)
        .where(Job.endpoint_id.in_(endpoint_ids), Job.state.not_in([s.value for s in TERMINAL]))
        .order_by(Job.id)
    )
    for job in session.scalars(stmt):
        assert job.endpoint_id is not None
        found[job.endpoint_id].append(job)
    return found


def _loads(session: Session, endpoints: list[Endpoint], now: float, sums: Sums) -> dict[int, Load]:
    """Each endpoint's load: its requests' gateway seconds over the short window and over its
    idle time (one grouped query per distinct window; a long one every LONG_EVERY_S), its last
    request, its recent failures."""
    ids = [e.id for e in endpoints]
    busy: dict[float, dict[int, float]] = {}
    for window in {w for e in endpoints for w in _windows(e)}:
        kept = sums.get(window)
        if window > SHORT_WINDOW_S and kept is not None and now - kept[0] < LONG_EVERY_S:
            busy[window] = kept[1]
            continue
        rows = session.execute(
            select(InferenceUsage.endpoint_id, func.sum(InferenceUsage.ms))
            .where(InferenceUsage.endpoint_id.in_(ids), InferenceUsage.at >= now - window)
            .group_by(InferenceUsage.endpoint_id)
        )
        busy[window] = {endpoint_id: float(ms) / 1000 for endpoint_id, ms in rows}
        sums[window] = (now, busy[window])
    last = _by_endpoint(
        session,
        select(InferenceUsage.endpoint_id, func.max(InferenceUsage.at))
        .where(InferenceUsage.endpoint_id.in_(ids))
        .group_by(InferenceUsage.endpoint_id),
    )
    failed = _by_endpoint(
        session,
        select(Job.endpoint_id, func.count())
        .where(
            Job.endpoint_id.in_(ids),
            Job.state == JobState.FAILED.value,
            Job.ended_at >= now - FAILURE_WINDOW_S,
        )
        .group_by(Job.endpoint_id),
    )
    return {
        e.id: Load(
            tuple((busy[w].get(e.id, 0.0), w) for w in _windows(e)),
            last.get(e.id),
            e.wanted_at,
            int(failed.get(e.id, 0)),
        )
        for e in endpoints
    }


def _windows(endpoint: Endpoint) -> tuple[float, float]:
    """The short window (never longer than the endpoint's idle time) and its idle time."""
    return min(SHORT_WINDOW_S, endpoint.idle_timeout_s), endpoint.idle_timeout_s


def _by_endpoint(session: Session, stmt: Select[Any, Any]) -> dict[int, Any]:
    return {endpoint_id: value for endpoint_id, value in session.execute(stmt) if endpoint_id}
