"""Read the facility into a scheduler `Snapshot`, in one short read transaction.

Rows, not ORM objects: with thousands of pending jobs this runs every tick, and building ORM
instances for each would cost more than scheduling them. A job's user is its user id as text:
read from the job row itself, with no join on users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from aifactory.accounting import budget
from aifactory.domain.arrays import array_state
from aifactory.domain.dependencies import After, Dependency
from aifactory.domain.jobs import ACTIVE, JobState
from aifactory.domain.node_health import HEALTH
from aifactory.domain.placement import placement_of
from aifactory.domain.programmes import Award, Entitlement, entitlements
from aifactory.domain.resources import Resources
from aifactory.governance import admission
from aifactory.scheduler import NodeView, PendingJob, RunningJob, Snapshot
from aifactory.scheduler.estimates import RuntimeHistory, from_latest
from aifactory.scheduler.snapshot import Admission, ProjectView
from aifactory.scheduler.usage import WEEK_S
from aifactory.store import maintenance
from aifactory.store.models import Allocation, Job, Node, Programme, Project
from aifactory.store.sites import site_countries

FINISHED = (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.TIMEOUT.value)
HISTORY_JOBS = 5000  # the most recent finished jobs the runtime estimates learn from
USAGE_HALF_LIVES = 10  # older use is worth < 0.1 % of new: not worth reading
UNENTITLED_SHARES = 1e-3  # a project with no allocation in force, beside ones with
MIN_EXPONENT = -700.0  # e^-700 ≈ 1e-304: no use so old counts for anything


def read_snapshot(
    session: Session,
    now: float = 0.0,
    half_life_s: float = WEEK_S,
    *,
    holds: bool = False,
    budgets_enforced: bool = False,
) -> Snapshot:
    """`holds`: also the HELD jobs and the facts that decide holds (scheduler.admission), for
    a round that judges every waiting job; `budgets_enforced`: whether money can hold a job."""
    countries = site_countries(session)
    nodes = tuple(
        NodeView(
            row.id,
            Resources(row.gpus, row.cpus, row.memory_mb),
            row.gpu_model,
            row.schedulable,
            country=countries.get(row.site),
            out_of_service=None if row.schedulable else _why_out(row),
            block=row.block,
        )
        for row in session.scalars(select(Node).order_by(Node.id))
    )
    projects = {pid: name for pid, name in session.execute(select(Project.id, Project.name))}
    active = session.execute(
        select(*_RUNNING_COLUMNS).where(Job.state.in_([s.value for s in ACTIVE]))
    )
    running = tuple(_running(job, projects[job.project_id]) for job in active)
    waiting = session.execute(select(*_PENDING_COLUMNS).where(Job.state == JobState.PENDING.value))
    pending = tuple(_pending(job, projects[job.project_id]) for job in waiting)
    held = _held(session, projects) if holds else ()
    if not pending and not held:  # nothing to decide: skip what only deciding needs
        return Snapshot(nodes=nodes, running=running, pending=pending)
    with_work = {job.project for job in (*pending, *held)} | {job.project for job in running}
    entitled = _entitlements(session, now, with_work)
    return Snapshot(
        nodes=nodes,
        running=running,
        pending=tuple(_weighted(job, entitled.get(job.project)) for job in pending),
        projects=_project_views(session, projects, entitled, now, half_life_s),
        runtimes=_runtime_history(session, projects),
        held=tuple(_weighted(job, entitled.get(job.project)) for job in held),
        admission=_admission(session, (*pending, *held), now, budgets_enforced)
        if holds
        else Admission(),
        maintenance=maintenance.in_force(session, now, [n.id for n in nodes]),
    )


def _why_out(row: Node) -> str:
    if row.drained_at is None:
        return "not offered by its executor"
    by = "its health check" if row.drained_by == HEALTH else row.drained_by
    return f"drained by {by}: {row.drain_reason}"


def dependency_states(session: Session, job_ids: list[int]) -> dict[int, JobState]:
    """Where the jobs that waiting jobs depend on stand; an array's id stands for the whole
    array (domain.arrays.array_state)."""
    tasks: dict[int, list[JobState]] = {}
    found: dict[int, JobState] = {}
    for start in range(0, len(job_ids), 500):
        part = job_ids[start : start + 500]
        rows = session.execute(
            select(Job.id, Job.state, Job.array_id).where(
                or_(Job.id.in_(part), Job.array_id.in_(part))
            )
        )
        for job_id, state, array_id in rows:
            found[job_id] = JobState(state)
            if array_id is not None:
                tasks.setdefault(array_id, []).append(JobState(state))
    return found | {array_id: array_state(states) for array_id, states in tasks.items()}


def _held(session: Session, projects: dict[int, str]) -> tuple[PendingJob, ...]:
    rows = session.execute(
        select(*_PENDING_COLUMNS, Job.state_reason).where(Job.state == JobState.HELD.value)
    )
    return tuple(
        replace(_pending(job, projects[job.project_id]), held=job.state_reason or "held")
        for job in rows
    )


def _admission(
    session: Session, waiting: tuple[PendingJob, ...], now: float, budgets_enforced: bool
) -> Admission:
    """Only what the holds need: the datasets of jobs that declared some, and the allocations
    of projects with GPU work waiting (where money can hold a job)."""
    with_data = [job.job_id for job in waiting if job.uses_datasets]
    paying = {job.project for job in waiting if job.gpus} if budgets_enforced else set()
    funds = budget.wallets(session, paying) if paying else {}
    needed = sorted({d.job_id for job in waiting for d in job.after})
    return Admission(
        states=dependency_states(session, needed),
        budgets_enforced=budgets_enforced,
        funds={project: tuple(found) for project, found in funds.items()},
        data=admission.data_uses_by_job(session, now, with_data) if with_data else {},
    )


def _entitlements(session: Session, now: float, with_work: set[str]) -> dict[str, Entitlement]:
    """Shares, quotas and priority weights from the allocations valid now: an award takes
    effect in the scheduler on the next tick, with no one copying numbers by hand.

    Only projects with work (waiting or running) share a pool, as in a hierarchical fair-share
    tree: a pool's idle projects leave its share to their siblings before other pools."""
    rows = session.execute(
        select(
            Project.name,
            Programme.name.label("programme"),
            Programme.capacity_share,
            Programme.priority_weight,
            Allocation.award_gpu_s,
            Allocation.quota_gpus,
        )
        .join(Project, Project.id == Allocation.project_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .where(Allocation.valid_from <= now, Allocation.valid_to > now)
    )
    return entitlements(
        Award(r.name, r.programme, r.capacity_share, r.award_gpu_s, r.quota_gpus, r.priority_weight)
        for r in rows
        if r.name in with_work
    )


def _weighted(job: PendingJob, entitled: Entitlement | None) -> PendingJob:
    """A programme's priority weight adds to the priority class of its projects' jobs."""
    if entitled is None or entitled.priority_weight == 0:
        return job
    return replace(job, priority=job.priority + entitled.priority_weight)


def _project_views(
    session: Session,
    names: dict[int, str],
    entitled: dict[str, Entitlement],
    now: float,
    half_life_s: float,
) -> dict[str, ProjectView]:
    """Every project with its decayed GPU use and its entitlement. Without any allocation in
    force, every project has one share; with some, a project without one has almost none."""
    usage = _decayed_usage(session, names, now, half_life_s)
    default = Entitlement(1.0 if not entitled else UNENTITLED_SHARES, 0, 0)
    views = {}
    for name in names.values():
        own = entitled.get(name, default)
        views[name] = ProjectView(name, own.shares, own.quota_gpus, usage.get(name, 0.0))
    return views


def _decayed_usage(
    session: Session, names: dict[int, str], now: float, half_life_s: float
) -> dict[str, float]:
    """scheduler.usage.usage_at's sum, done by the database per project (a facility with a
    long history would otherwise send every job of the last ten half-lives to Python each
    tick): g · H/ln 2 · (2^(−(now−end)/H) − 2^(−(now−start)/H)) over each job's run so far."""
    rate = math.log(2) / half_life_s
    now_ = literal(now, Float)
    end = case((or_(Job.ended_at.is_(None), Job.ended_at > now_), now_), else_=Job.ended_at)
    start = cast(Job.started_at, Float)
    worth = (Job.gpus_per_node * Job.nodes) * (
        _decay(end - now_, rate) - _decay(start - now_, rate)
    )
    since = now - USAGE_HALF_LIVES * half_life_s
    rows = session.execute(
        select(Job.project_id, func.sum(worth))
        .where(
            Job.started_at.is_not(None),
            Job.started_at < now_,
            or_(Job.ended_at.is_(None), Job.ended_at >= since),
            or_(Job.ended_at.is_(None), Job.ended_at > Job.started_at),
        )
        .group_by(Job.project_id)
    )
    return {names[pid]: float(total) / rate for pid, total in rows if total}


def _decay(age: Any, rate: float) -> Any:
    """exp(age · rate) for age ≤ 0, floored where it is worth nothing anyway: PostgreSQL's EXP
    raises on underflow (below about e^−708) where Python's returns 0."""
    exponent = age * rate
    return func.exp(case((exponent < MIN_EXPONENT, MIN_EXPONENT), else_=exponent))


def _runtime_history(session: Session, names: dict[int, str]) -> RuntimeHistory:
    """What the most recent finished jobs teach about runtimes, oldest first.

    The state is compared as an expression (`state || ''`), not as the indexed column: else
    SQLite collects every finished job by state and sorts them all, where walking the end-time
    index backwards stops after HISTORY_JOBS rows."""
    rows = session.execute(
        select(Job.project_id, Job.user_id, Job.time_limit_s, Job.started_at, Job.ended_at)
        .where(
            Job.state.concat("").in_(FINISHED),
            Job.started_at.is_not(None),
            Job.ended_at.is_not(None),
        )
        .order_by(Job.ended_at.desc(), Job.id.desc())
        .limit(HISTORY_JOBS)
    ).all()
    return from_latest(
        (str(r.user_id), names[r.project_id], r.time_limit_s, r.ended_at - r.started_at)
        for r in rows
    )


_RUNNING_COLUMNS = (
    Job.id,
    Job.project_id,
    Job.user_id,
    Job.preemptible,
    Job.cancel_requested,
    Job.preempt_requested_at,
    Job.placement,
    Job.started_at,
    Job.admitted_at,
    Job.submitted_at,
    Job.time_limit_s,
    Job.array_id,
)
_PENDING_COLUMNS = (
    Job.id,
    Job.project_id,
    Job.user_id,
    Job.submitted_at,
    Job.gpus_per_node,
    Job.cpus_per_node,
    Job.memory_mb_per_node,
    Job.nodes,
    Job.gpu_model,
    Job.time_limit_s,
    Job.priority,
    Job.preemptible,
    Job.countries,
    Job.uses_datasets,
    Job.after,
    Job.array_id,
    Job.array_throttle,
    Job.one_block,
)


def _running(job: Any, project: str) -> RunningJob:
    return RunningJob(
        job_id=job.id,
        project=project,
        placement=placement_resources(job.placement),
        started_at=job.started_at or job.admitted_at or job.submitted_at,
        time_limit_s=job.time_limit_s,
        user=str(job.user_id),
        preemptible=job.preemptible,
        # Asked to stop (cancel or preemption): its devices free up within a grace period.
        stopping=job.cancel_requested or job.preempt_requested_at is not None,
        array_id=job.array_id,
    )


def _pending(job: Any, project: str) -> PendingJob:
    return PendingJob(
        job_id=job.id,
        project=project,
        submitted_at=job.submitted_at,
        per_node=Resources(job.gpus_per_node, job.cpus_per_node, job.memory_mb_per_node),
        nodes=job.nodes,
        gpu_model=job.gpu_model,
        time_limit_s=job.time_limit_s,
        priority=job.priority,
        preemptible=job.preemptible,
        user=str(job.user_id),
        countries=None if job.countries is None else frozenset(job.countries),
        uses_datasets=job.uses_datasets,
        after=tuple(Dependency(After(d["after"]), int(d["job"])) for d in job.after or ()),
        array_id=job.array_id,
        array_throttle=job.array_throttle,
        one_block=job.one_block,
    )


def placement_resources(placement: dict[str, Any] | None) -> dict[str, Resources]:
    """The stored placement as the scheduler counts it: resources per node."""
    return {node_id: share.resources for node_id, share in placement_of(placement).items()}


def without_foreign(snapshot: Snapshot, load: Mapping[str, Resources]) -> Snapshot:
    """The snapshot with each node's capacity less what work the facility did not start holds
    there (never below nothing): that room is not the scheduler's to hand out."""
    if not load:
        return snapshot
    empty = Resources()
    nodes = tuple(
        replace(node, capacity=_floor(node.capacity - load.get(node.id, empty)))
        for node in snapshot.nodes
    )
    return replace(snapshot, nodes=nodes)


def _floor(room: Resources) -> Resources:
    return Resources(max(room.gpus, 0), max(room.cpus, 0), max(room.memory_mb, 0))
