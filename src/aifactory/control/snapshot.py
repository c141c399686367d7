"""Read the facility into a scheduler `Snapshot`, in one short read transaction.

Rows, not ORM objects: with thousands of pending jobs this runs every tick, and building ORM
instances for each would cost more than scheduling them. A job's user is its user id as text:
read from the job row itself, with no join on users.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE, JobState
from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, RunningJob, Snapshot
from aifactory.store.models import Job, Node, Project


def read_snapshot(session: Session) -> Snapshot:
    nodes = tuple(
        NodeView(
            row.id, Resources(row.gpus, row.cpus, row.memory_mb), row.gpu_model, row.schedulable
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
    return Snapshot(nodes=nodes, running=running, pending=pending)


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
)


def _running(job: Any, project: str) -> RunningJob:
    return RunningJob(
        job_id=job.id,
        project=project,
        placement=placement_resources(job.placement or {}),
        started_at=job.started_at or job.admitted_at or job.submitted_at,
        time_limit_s=job.time_limit_s,
        user=str(job.user_id),
        preemptible=job.preemptible,
        # Asked to stop (cancel or preemption): its devices free up within a grace period.
        stopping=job.cancel_requested or job.preempt_requested_at is not None,
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
    )


def placement_resources(placement: dict[str, Any]) -> dict[str, Resources]:
    """The stored placement ({node: {gpus, cpus, memory_mb, gpu_ids, cpu_ids}}) as Resources."""
    return {
        node_id: Resources(int(p["gpus"]), int(p["cpus"]), int(p["memory_mb"]))
        for node_id, p in placement.items()
    }
