"""Inference endpoints: a project's trained model, served (issue 19).

An endpoint serves the checkpoints of a finished job of its project under a name (the model's
name at the gateway, `/v1`). Its replicas are ordinary jobs of the project — the same scheduler,
sandbox, placement and metering as any job — each running the recipe's engine
(`python -m aifactory.recipes.dutch_gpt serve`) on a Unix socket in the replica's own
directory, which the facility alone reaches besides the job: no port, no network. The gateway
(services.gateway) routes to the replicas that are RUNNING.

Who may (domain.permissions): ENDPOINT_READ to see a project's endpoints, ENDPOINT_MANAGE to
create or remove one. Removing one cancels its replicas; its usage records stay.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.jobfiles import checkpoint_dir, work_dir
from aifactory.domain.jobs import TERMINAL, JobSpec, JobState
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.jobs import Submission, submit_jobs, withdraw
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import Endpoint, InferenceUsage, Job, Project

ENGINE_MODULE = "aifactory.recipes.dutch_gpt"
SOCKET = "engine.sock"  # in the replica's own directory (its working directory)
REPLICA_TIME_LIMIT_S = 30 * 86400
MAX_REPLICAS = 16


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    name: str
    source_job: int  # a finished job of the project, whose checkpoints it serves
    replicas: int = 1
    cpus: int = 1
    memory_mb: int = 2048
    gpus: int = 0
    environment: str | None = None  # a Python environment with PyTorch (else the facility's)


@dataclass(frozen=True, slots=True)
class Replica:
    job_id: int
    state: str


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    project: str
    source_job: int
    replicas: int
    cpus: int
    memory_mb: int
    gpus: int
    created_by: str
    created_at: float
    running: list[Replica] = field(default_factory=list)  # its replicas that have not ended
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def create_endpoint(
    session: Session,
    principal: Principal,
    spec: EndpointSpec,
    *,
    project: str,
    jobs_dir: Path,
    now: float,
) -> EndpointView:
    """Name the endpoint and submit its replicas (not preemptible: they serve requests)."""
    owner = project_by_name(session, principal, project, action=Action.ENDPOINT_MANAGE)
    if not 1 <= spec.replicas <= MAX_REPLICAS:
        raise InvalidInput(f"must be from 1 to {MAX_REPLICAS}", field="replicas")
    if _live(session, owner.id, spec.name) is not None:
        raise Conflict(f"project {owner.name} serves a model named {spec.name!r}", field="name")
    source = session.get(Job, spec.source_job)
    if source is None or source.project_id != owner.id:
        raise InvalidInput(f"no job {spec.source_job} in project {owner.name}", field="source_job")
    if source.state != JobState.SUCCEEDED.value:
        raise InvalidInput(
            f"job {spec.source_job} has not succeeded ({source.state}): an endpoint serves the "
            "checkpoints of a finished training job",
            field="source_job",
        )
    endpoint = Endpoint(
        project_id=owner.id,
        name=spec.name,
        source_job_id=spec.source_job,
        replicas=spec.replicas,
        cpus=spec.cpus,
        memory_mb=spec.memory_mb,
        gpus=spec.gpus,
        created_by=principal.name,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    _submit_replicas(session, principal, endpoint, owner, spec, jobs_dir, now)
    audit.record(
        session,
        actor=principal.name,
        action="endpoint.create",
        object=f"endpoint:{spec.name}",
        source=principal.source,
        project_id=owner.id,
        detail={"source_job": spec.source_job, "replicas": spec.replicas},
        at=now,
    )
    return _view(session, endpoint, owner)


def _submit_replicas(
    session: Session,
    principal: Principal,
    endpoint: Endpoint,
    owner: Project,
    spec: EndpointSpec,
    jobs_dir: Path,
    now: float,
) -> None:
    checkpoints = checkpoint_dir(work_dir(jobs_dir / str(spec.source_job)))
    python = "python" if spec.environment else sys.executable
    command = (
        python, "-m", ENGINE_MODULE, "serve", "--from", str(checkpoints),
        "--socket", SOCKET, "--name", spec.name,
    )  # fmt: skip
    replica = JobSpec(
        name=f"endpoint-{spec.name}",
        command=command,
        cpus_per_node=spec.cpus,
        memory_mb_per_node=spec.memory_mb,
        gpus_per_node=spec.gpus,
        time_limit_s=REPLICA_TIME_LIMIT_S,
        preemptible=False,
        inputs=(spec.source_job,),
        environment=spec.environment,
    )
    batch = [
        Submission(principal, replace(replica, name=f"endpoint-{spec.name}-{i}"), owner.name, None)
        for i in range(spec.replicas)
    ]
    for outcome in submit_jobs(session, batch, now=now):
        if isinstance(outcome, AifactoryError):
            raise outcome
        job = session.get(Job, outcome.job.id)
        assert job is not None
        job.endpoint_id = endpoint.id


def list_endpoints(session: Session, principal: Principal, *, project: str) -> list[EndpointView]:
    owner = project_by_name(session, principal, project, action=Action.ENDPOINT_READ)
    stmt = (
        select(Endpoint)
        .where(Endpoint.project_id == owner.id, Endpoint.deleted_at.is_(None))
        .order_by(Endpoint.name)
    )
    return [_view(session, e, owner) for e in session.scalars(stmt)]


def show_endpoint(
    session: Session, principal: Principal, name: str, *, project: str
) -> EndpointView:
    owner = project_by_name(session, principal, project, action=Action.ENDPOINT_READ)
    return _view(session, _found(session, owner, name), owner)


def delete_endpoint(
    session: Session, principal: Principal, name: str, *, project: str, now: float
) -> None:
    """The endpoint goes and its replicas are cancelled; what it served stays counted."""
    owner = project_by_name(session, principal, project, action=Action.ENDPOINT_MANAGE)
    endpoint = _found(session, owner, name)
    endpoint.deleted_at = now
    for job in session.scalars(select(Job).where(Job.endpoint_id == endpoint.id)):
        if JobState(job.state) not in TERMINAL:
            withdraw(session, job, actor=principal.name, now=now)
    audit.record(
        session,
        actor=principal.name,
        action="endpoint.delete",
        object=f"endpoint:{name}",
        source=principal.source,
        project_id=owner.id,
        at=now,
    )


def _found(session: Session, owner: Project, name: str) -> Endpoint:
    endpoint = _live(session, owner.id, name)
    if endpoint is None:
        raise NotFound(f"project {owner.name} serves no model named {name!r}", field="name")
    return endpoint


def _live(session: Session, project_id: int, name: str) -> Endpoint | None:
    stmt = select(Endpoint).where(
        Endpoint.project_id == project_id, Endpoint.name == name, Endpoint.deleted_at.is_(None)
    )
    return session.scalars(stmt).first()


def _view(session: Session, endpoint: Endpoint, owner: Project) -> EndpointView:
    replicas = session.execute(
        select(Job.id, Job.state).where(Job.endpoint_id == endpoint.id).order_by(Job.id)
    )
    running = [Replica(i, s) for i, s in replicas if JobState(s) not in TERMINAL]
    used = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(InferenceUsage.prompt_tokens), 0),
            func.coalesce(func.sum(InferenceUsage.completion_tokens), 0),
        ).where(InferenceUsage.endpoint_id == endpoint.id)
    ).one()
    return EndpointView(
        name=endpoint.name,
        project=owner.name,
        source_job=endpoint.source_job_id,
        replicas=endpoint.replicas,
        cpus=endpoint.cpus,
        memory_mb=endpoint.memory_mb,
        gpus=endpoint.gpus,
        created_by=endpoint.created_by,
        created_at=endpoint.created_at,
        running=running,
        requests=int(used[0]),
        prompt_tokens=int(used[1]),
        completion_tokens=int(used[2]),
    )
