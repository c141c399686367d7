"""A job as the faces (API, portal) show it: the row's facts, with names where the row keeps
ids and the placement typed. The one place the id → name lookup for jobs is written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from aifactory.domain.interactive import TOKEN_ENV
from aifactory.domain.placement import NodeShare, placement_of
from aifactory.store.models import Job, Project, User
from aifactory.store.names import names_of


@dataclass(frozen=True, slots=True)
class JobView:
    id: int
    name: str
    project: str
    owner: str
    project_id: int
    user_id: int
    state: str
    state_reason: str | None
    command: list[str]
    env: dict[str, Any]
    working_dir: str | None
    gpus_per_node: int
    nodes: int
    cpus_per_node: int
    memory_mb_per_node: int
    gpu_model: str | None
    time_limit_s: int
    preemptible: bool
    priority: int
    network: str
    idempotency_key: str | None
    cancel_requested: bool
    attempts: int
    exit_code: int | None
    submitted_at: float
    admitted_at: float | None
    started_at: float | None
    ended_at: float | None
    uses_datasets: bool
    array_id: int | None
    array_index: int | None
    array_throttle: int | None
    environment: str | None = None  # its software, as settled at submission
    environment_key: str | None = None
    image: str | None = None
    image_digest: str | None = None
    notify: bool = False  # its owner is told when it ends
    one_block: bool = False  # it must run inside one network block
    inputs: list[int] = field(default_factory=list)
    after: list[Any] = field(default_factory=list)  # as stored: [{"after": …, "job": id}]
    placement: dict[str, NodeShare] = field(default_factory=dict)


HIDDEN = "(hidden: a session's notebook token)"


def views_of(session: Session, jobs: Iterable[Job]) -> list[JobView]:
    """Views of a page of jobs, in order: two name queries, whatever the page holds."""
    jobs = list(jobs)
    projects = names_of(session, Project, {j.project_id for j in jobs})
    owners = names_of(session, User, {j.user_id for j in jobs})
    return [_view(job, projects[job.project_id], owners[job.user_id]) for job in jobs]


def view_of(session: Session, job: Job) -> JobView:
    (found,) = views_of(session, [job])
    return found


def _view(job: Job, project: str, owner: str) -> JobView:
    return JobView(
        id=job.id,
        name=job.name,
        project=project,
        owner=owner,
        project_id=job.project_id,
        user_id=job.user_id,
        state=job.state,
        state_reason=job.state_reason,
        command=list(job.command),
        env={k: HIDDEN if k == TOKEN_ENV else v for k, v in job.env.items()},
        working_dir=job.working_dir,
        gpus_per_node=job.gpus_per_node,
        nodes=job.nodes,
        cpus_per_node=job.cpus_per_node,
        memory_mb_per_node=job.memory_mb_per_node,
        gpu_model=job.gpu_model,
        time_limit_s=job.time_limit_s,
        preemptible=job.preemptible,
        priority=job.priority,
        network=job.network,
        idempotency_key=job.idempotency_key,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        exit_code=job.exit_code,
        submitted_at=job.submitted_at,
        admitted_at=job.admitted_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        uses_datasets=job.uses_datasets,
        array_id=job.array_id,
        array_index=job.array_index,
        array_throttle=job.array_throttle,
        environment=job.environment,
        environment_key=job.environment_key,
        image=job.image,
        image_digest=job.image_digest,
        notify=job.notify,
        one_block=job.one_block,
        inputs=list(job.inputs or []),
        after=list(job.after or []),
        placement=placement_of(job.placement),
    )
