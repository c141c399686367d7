"""Inference endpoints: a project's trained model, served (issue 19).

An endpoint serves a model of its project under a name (the model's name at the gateway,
`/v1`): the checkpoints of a finished job, with the recipe's engine (`python -m
aifactory.recipes.dutch_gpt serve`), or a model directory in one of its datasets, with vLLM
(`vllm serve --uds`, in an environment that has it). Its replicas are ordinary jobs of the
project — the same scheduler, sandbox, placement, budgets and metering as any job — each
running the engine on a Unix socket in the replica's own directory, which the facility alone
reaches besides the job: no port, no network. The gateway (services.gateway) routes to the
replicas that are RUNNING and not draining.

Its replicas run between `min_replicas` and `max_replicas` as its load asks (domain.autoscale,
applied each second by `scale_endpoints` on the control loop): the first `min_replicas` are
not preemptible, the rest are; a replica that ends is replaced; with `min_replicas` 0 the
endpoint scales to zero after `idle_timeout_s` without requests, and the next request waits
for a cold start (gateway). Replicas the control loop starts run as whoever made the endpoint.
A replica runs for at most `time_limit_s` (what its allocation reserves, as for any job): its
successor is started up to ten minutes before that, and it is drained once the successor runs.

Who may (domain.permissions): ENDPOINT_READ to see a project's endpoints, ENDPOINT_MANAGE to
create or remove one. Removing one cancels its replicas; its usage records stay.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import env_name
from aifactory.domain.jobfiles import checkpoint_dir, work_dir
from aifactory.domain.jobs import TERMINAL, JobSpec, JobState
from aifactory.domain.money import cents_of_nanocents
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.jobs import Submission, submit_jobs, withdraw
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import Endpoint, InferenceUsage, Job, Project

ENGINE_MODULE = "aifactory.recipes.dutch_gpt"
RECIPE, VLLM = "recipe", "vllm"
ENGINES = (RECIPE, VLLM)
# vLLM's OpenAI server, on the replica's socket only (`--uds`: no port), under the endpoint's
# name, from the model directory in the dataset's variable (its name is [A-Z0-9_] only).
VLLM_SCRIPT = (
    'name="$1"; shift; exec vllm serve "${%s}" --uds engine.sock --served-model-name "$name" "$@"'
)
ENGINE_ARG = re.compile(r"[A-Za-z0-9_.,:=/+@-]{1,200}")
OWN_ARGS = ("--host", "--port", "--uds", "--fd", "--served-model-name", "--api-key", "--config")
SOCKET = "engine.sock"  # in the replica's own directory (its working directory)
MAX_TIME_LIMIT_S = 30 * 86400
MIN_TIME_LIMIT_S = 60.0
MAX_REPLICAS = 16
MAX_CONCURRENCY = 256
MIN_IDLE_S, MAX_IDLE_S = 1.0, 7 * 86400.0


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    name: str
    source_job: int | None  # recipe: a finished job of the project, whose checkpoints it serves
    replicas: int = 1  # the least that run (not preemptible)
    cpus: int = 1
    memory_mb: int = 2048
    gpus: int = 0
    environment: str | None = None  # a Python environment with PyTorch (else the facility's)
    max_replicas: int | None = None  # None: as many as `replicas` (at least 1)
    concurrency: int = 4  # requests one replica serves at once; more wait at the gateway
    idle_timeout_s: float = 900.0
    time_limit_s: float = 86400.0  # each replica's: what its allocation reserves for it
    engine: str = RECIPE
    dataset: str | None = None  # vllm: the dataset that holds the model (Hugging Face layout)
    engine_args: tuple[str, ...] = ()  # vllm: its own options, e.g. ("--max-model-len", "4096")

    @property
    def most(self) -> int:
        return self.max_replicas if self.max_replicas is not None else max(self.replicas, 1)


@dataclass(frozen=True, slots=True)
class Replica:
    job_id: int
    state: str


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    project: str
    source_job: int | None
    replicas: int  # the least that run
    cpus: int
    memory_mb: int
    gpus: int
    created_by: str
    created_at: float
    running: list[Replica] = field(default_factory=list)  # its replicas that have not ended
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_replicas: int = 1
    concurrency: int = 4
    idle_timeout_s: float = 900.0
    time_limit_s: float = 86400.0
    environment: str | None = None
    draining: list[int] = field(default_factory=list)  # job ids no request is sent to
    trouble: str | None = None  # why no replica is started now
    engine: str = RECIPE
    dataset: str | None = None
    engine_args: list[str] = field(default_factory=list)
    cost_nanocents: int = 0  # what its requests cost (exact; rounded where shown)

    @property
    def cost_cents(self) -> int:
        return cents_of_nanocents(self.cost_nanocents)


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
    _check(spec)
    if _live(session, owner.id, spec.name) is not None:
        raise Conflict(f"project {owner.name} serves a model named {spec.name!r}", field="name")
    if spec.engine == RECIPE:
        _check_source(session, owner, spec.source_job)
    endpoint = Endpoint(
        project_id=owner.id,
        name=spec.name,
        engine=spec.engine,
        source_job_id=spec.source_job if spec.engine == RECIPE else None,
        dataset=spec.dataset,
        engine_args=list(spec.engine_args),
        min_replicas=spec.replicas,
        max_replicas=spec.most,
        concurrency=spec.concurrency,
        idle_timeout_s=spec.idle_timeout_s,
        time_limit_s=spec.time_limit_s,
        cpus=spec.cpus,
        memory_mb=spec.memory_mb,
        gpus=spec.gpus,
        environment=spec.environment,
        draining={},
        created_by=principal.name,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    submit_replicas(
        session, principal, endpoint, owner, [False] * spec.replicas, jobs_dir=jobs_dir, now=now
    )
    audit.record(
        session,
        actor=principal.name,
        action="endpoint.create",
        object=f"endpoint:{spec.name}",
        source=principal.source,
        project_id=owner.id,
        detail={
            "source_job": spec.source_job,
            "replicas": spec.replicas,
            "max_replicas": spec.most,
        },
        at=now,
    )
    return _view(session, endpoint, owner)


def _check_source(session: Session, owner: Project, source_job: int | None) -> None:
    source = session.get(Job, source_job) if source_job is not None else None
    if source is None or source.project_id != owner.id:
        raise InvalidInput(f"no job {source_job} in project {owner.name}", field="source_job")
    if source.state != JobState.SUCCEEDED.value:
        raise InvalidInput(
            f"job {source_job} has not succeeded ({source.state}): an endpoint serves the "
            "checkpoints of a finished training job",
            field="source_job",
        )


def _check_engine(spec: EndpointSpec) -> None:
    """The recipe's engine serves a job's checkpoints; vLLM a dataset's model directory, in an
    environment that has vLLM, with its own options but not those that say where it listens."""
    if spec.engine not in ENGINES:
        raise InvalidInput(f"must be one of {', '.join(ENGINES)}", field="engine")
    if spec.engine == RECIPE:
        if spec.dataset is not None or spec.engine_args:
            raise InvalidInput("the recipe's engine takes no dataset or options", field="engine")
        return
    if spec.dataset is None:
        raise InvalidInput("vLLM serves a model directory: name its dataset", field="dataset")
    if spec.environment is None:
        raise InvalidInput("vLLM runs in an environment that has it", field="environment")
    for arg in spec.engine_args:
        if not ENGINE_ARG.fullmatch(arg) or arg.split("=")[0].replace("_", "-") in OWN_ARGS:
            raise InvalidInput(
                f"{arg!r} is not an option the facility passes on (letters, digits and "
                f"_.,:=/+@- only; not {', '.join(OWN_ARGS)}: the facility sets those)",
                field="engine_args",
            )


def _check(spec: EndpointSpec) -> None:
    _check_engine(spec)
    if not 0 <= spec.replicas <= MAX_REPLICAS:
        raise InvalidInput(f"must be from 0 to {MAX_REPLICAS}", field="replicas")
    if not max(spec.replicas, 1) <= spec.most <= MAX_REPLICAS:
        raise InvalidInput(f"must be from max(replicas, 1) to {MAX_REPLICAS}", field="max_replicas")
    if not 1 <= spec.concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"must be from 1 to {MAX_CONCURRENCY}", field="concurrency")
    if not MIN_TIME_LIMIT_S <= spec.time_limit_s <= MAX_TIME_LIMIT_S:
        raise InvalidInput(
            f"must be from {MIN_TIME_LIMIT_S:.0f} to {MAX_TIME_LIMIT_S:.0f} seconds",
            field="time_limit_s",
        )
    if not MIN_IDLE_S <= spec.idle_timeout_s <= MAX_IDLE_S:
        raise InvalidInput(
            f"must be from {MIN_IDLE_S:.0f} to {MAX_IDLE_S:.0f} seconds", field="idle_timeout_s"
        )


def submit_replicas(
    session: Session,
    principal: Principal,
    endpoint: Endpoint,
    owner: Project,
    preemptible: list[bool],
    *,
    jobs_dir: Path,
    now: float,
) -> list[int]:
    """A replica job for each of `preemptible` (whether that one may be preempted)."""
    replica = JobSpec(
        name=f"endpoint-{endpoint.name}",
        command=engine_command(endpoint, jobs_dir),
        cpus_per_node=endpoint.cpus,
        memory_mb_per_node=endpoint.memory_mb,
        gpus_per_node=endpoint.gpus,
        time_limit_s=round(endpoint.time_limit_s),
        preemptible=False,
        inputs=(endpoint.source_job_id,) if endpoint.source_job_id is not None else (),
        datasets=(endpoint.dataset,) if endpoint.dataset is not None else (),
        environment=endpoint.environment,
    )
    made = session.scalar(select(func.count()).where(Job.endpoint_id == endpoint.id)) or 0
    batch = [
        Submission(
            principal,
            replace(replica, name=f"endpoint-{endpoint.name}-{made + i}", preemptible=flag),
            owner.name,
            None,
        )
        for i, flag in enumerate(preemptible)
    ]
    started, refused = [], []
    for outcome in submit_jobs(session, batch, now=now):
        if isinstance(outcome, AifactoryError):
            refused.append(outcome)
            continue
        job = session.get(Job, outcome.job.id)
        assert job is not None
        job.endpoint_id = endpoint.id  # those submitted are replicas, even if one was refused
        started.append(job.id)
    if refused:
        raise refused[0]
    return started


def engine_command(endpoint: Endpoint, jobs_dir: Path) -> tuple[str, ...]:
    if endpoint.engine == VLLM:
        assert endpoint.dataset is not None
        script = VLLM_SCRIPT % env_name(endpoint.dataset.split("@")[0])
        return ("sh", "-c", script, "vllm", endpoint.name, *endpoint.engine_args)
    assert endpoint.source_job_id is not None
    checkpoints = checkpoint_dir(work_dir(jobs_dir / str(endpoint.source_job_id)))
    python = "python" if endpoint.environment else sys.executable
    return (
        python, "-m", ENGINE_MODULE, "serve", "--from", str(checkpoints),
        "--socket", SOCKET, "--name", endpoint.name,
    )  # fmt: skip


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
            func.coalesce(func.sum(InferenceUsage.cost_nanocents), 0),
        ).where(InferenceUsage.endpoint_id == endpoint.id)
    ).one()
    return EndpointView(
        name=endpoint.name,
        project=owner.name,
        source_job=endpoint.source_job_id,
        replicas=endpoint.min_replicas,
        cpus=endpoint.cpus,
        memory_mb=endpoint.memory_mb,
        gpus=endpoint.gpus,
        created_by=endpoint.created_by,
        created_at=endpoint.created_at,
        running=running,
        requests=int(used[0]),
        prompt_tokens=int(used[1]),
        completion_tokens=int(used[2]),
        cost_nanocents=int(used[3]),
        max_replicas=endpoint.max_replicas,
        concurrency=endpoint.concurrency,
        idle_timeout_s=endpoint.idle_timeout_s,
        time_limit_s=round(endpoint.time_limit_s),
        environment=endpoint.environment,
        draining=sorted(int(j) for j in endpoint.draining or {}),
        trouble=endpoint.trouble,
        engine=endpoint.engine,
        dataset=endpoint.dataset,
        engine_args=list(endpoint.engine_args or []),
    )
