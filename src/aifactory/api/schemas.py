"""Request and response schemas: the API's own family of models (not ORM, not domain)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from aifactory.domain import names
from aifactory.domain.datasets import ENV_PREFIX
from aifactory.domain.jobs import JobSpec, JobState, Network
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.services.auth import MAX_TTL_DAYS, MIN_TTL_DAYS

# Every name (users, organisations, projects, programmes, calls, sites, tokens): domain.names.
Name = Annotated[
    str,
    AfterValidator(names.check_name),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": names.MAX_LENGTH,
            "pattern": names.PATTERN,
            "description": f"a name: {names.RULE}",
        }
    ),
]
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SCRIPT = 64 * 1024
DATASET_REF = names.LOWER_CASE_PATTERN.removesuffix("$") + r"(@[1-9][0-9]{0,8})?$"  # name@version
MAX_ID = 2**31 - 1  # ids are INTEGER columns; a larger one would fail in the database, not 404
Priority = Annotated[int, Field(ge=-1000, le=1000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL and no argv or env can carry one: refuse it here.
        if _has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class JobSubmit(Request):
    name: str = Field("job", min_length=1, max_length=128)
    project: Name | None = None
    command: list[Annotated[str, Field(max_length=32 * 1024)]] | None = Field(
        None, min_length=1, max_length=4096, description="argv; exactly one of command, script"
    )
    script: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SCRIPT,
        description="a bash script; exactly one of command, script",
    )
    env: dict[str, Annotated[str, Field(max_length=32 * 1024)]] = Field(
        default_factory=dict, max_length=256
    )
    working_dir: str | None = Field(None, min_length=1, max_length=4096)
    gpus: int = Field(0, ge=0, le=1024, description="GPUs per node")
    nodes: int = Field(1, ge=1, le=1024)
    cpus: int = Field(1, ge=1, le=4096, description="CPUs per node")
    memory_mb: int = Field(1024, ge=1, le=64 * 1024 * 1024, description="memory per node")
    gpu_model: str | None = Field(None, min_length=1, max_length=64)
    time_limit_s: int = Field(3600, ge=1, le=30 * 86400)
    preemptible: bool | None = Field(
        None, description="may be preempted; unset: as the project's programme says"
    )
    priority: Priority = Field(
        0, description="weighs in the job's place in the queue; above 0: operators and admins"
    )
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)
    network: Network = Field(
        Network.NONE,
        description="none (default: loopback only) or open (the host's network, where the "
        "facility allows it)",
    )
    inputs: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list,
        max_length=16,
        description="earlier jobs of the same project whose own directories (checkpoints, "
        "outputs) it reads, mounted read-only",
    )
    datasets: list[Annotated[str, Field(pattern=DATASET_REF)]] = Field(
        default_factory=list,
        max_length=16,
        description="datasets the job reads: name (newest version) or name@version; each "
        "path comes in AIFACTORY_DATASET_<NAME>",
    )

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if key.startswith(ENV_PREFIX):
                raise ValueError(f"{key!r}: {ENV_PREFIX}* is set by the facility from 'datasets'")
        return env

    @field_validator("working_dir")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        if path is not None and not path.startswith("/"):
            raise ValueError("must be an absolute path")
        return path

    @model_validator(mode="after")
    def _one_of_command_script(self) -> JobSubmit:
        if (self.command is None) == (self.script is None):
            raise ValueError("give exactly one of 'command' and 'script'")
        return self

    def argv(self) -> list[str]:
        return (
            list(self.command)
            if self.command is not None
            else ["/bin/bash", "-c", self.script or ""]
        )

    def spec(self) -> JobSpec:
        """The job as the domain has it (the API and the portal's form both submit this)."""
        return JobSpec(
            name=self.name,
            command=tuple(self.argv()),
            env=dict(self.env),
            working_dir=self.working_dir,
            gpus_per_node=self.gpus,
            nodes=self.nodes,
            cpus_per_node=self.cpus,
            memory_mb_per_node=self.memory_mb,
            gpu_model=self.gpu_model,
            time_limit_s=self.time_limit_s,
            preemptible=self.preemptible,
            priority=self.priority,
            datasets=tuple(self.datasets),
            network=self.network,
            inputs=tuple(dict.fromkeys(self.inputs)),
        )


class JobPriority(Request):
    priority: Priority


def _iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class JobOut(Response):
    id: int
    name: str
    project: str
    user: str
    state: JobState
    state_reason: str | None
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    gpus: int
    nodes: int
    cpus: int
    memory_mb: int
    gpu_model: str | None
    time_limit_s: int
    preemptible: bool
    priority: int
    network: Network
    inputs: list[int]
    idempotency_key: str | None
    cancel_requested: bool
    attempts: int
    exit_code: int | None
    placement: dict[str, Any] | None
    submitted_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, job: Any, project: str, user: str) -> JobOut:
        return cls(
            id=job.id,
            name=job.name,
            project=project,
            user=user,
            state=JobState(job.state),
            state_reason=job.state_reason,
            command=job.command,
            env=job.env,
            working_dir=job.working_dir,
            gpus=job.gpus_per_node,
            nodes=job.nodes,
            cpus=job.cpus_per_node,
            memory_mb=job.memory_mb_per_node,
            gpu_model=job.gpu_model,
            time_limit_s=job.time_limit_s,
            preemptible=job.preemptible,
            priority=job.priority,
            network=Network(job.network),
            inputs=list(job.inputs or []),
            idempotency_key=job.idempotency_key,
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            exit_code=job.exit_code,
            placement=job.placement,
            submitted_at=_iso(job.submitted_at),
            admitted_at=_iso(job.admitted_at),
            started_at=_iso(job.started_at),
            ended_at=_iso(job.ended_at),
        )


class JobEventOut(Response):
    at: datetime
    from_state: JobState | None
    to_state: JobState
    reason: str | None
    actor: str

    @classmethod
    def of(cls, event: Any) -> JobEventOut:
        return cls(
            at=_iso(event.at),
            from_state=event.from_state,
            to_state=event.to_state,
            reason=event.reason,
            actor=event.actor,
        )


class QueueInfo(BaseModel):
    position: int | None = Field(
        description="1 = next in line, counting every job in the facility; null: held"
    )
    held: bool = Field(
        False, description="HELD: out of the line until what the reason names releases it"
    )
    reason: str = Field(description="why the job is not running yet (held: what releases it)")
    estimated_start_at: datetime | None = Field(
        description="a cautious estimate: jobs ahead run to their limits, no backfill"
    )

    @classmethod
    def of(cls, explanation: Any) -> QueueInfo:
        return cls(
            position=explanation.position,
            held=explanation.held,
            reason=explanation.reason,
            estimated_start_at=_iso(explanation.estimated_start),
        )


class JobDetail(JobOut):
    events: list[JobEventOut]
    queue: QueueInfo | None = Field(
        None, description="for a PENDING or HELD job: why it waits, or what releases it"
    )


class QueuedJobOut(JobOut):
    queue: QueueInfo


class LogsOut(BaseModel):
    text: str
    offset: int
    size: int
    complete: bool


class OrganisationCreate(Request):
    name: Name
    kind: Annotated[OrgKind, Field(strict=False)]


class OrganisationOut(Response):
    id: int
    name: str
    kind: OrgKind


class ProjectCreate(Request):
    name: Name
    organisation: Name
    owner: Name | None = Field(None, description="the first owner; yourself if not given")


class ProjectOut(BaseModel):
    id: int
    name: str
    organisation: str
    role: ProjectRole | None = Field(None, description="your role in it")


class MemberAdd(Request):
    user: Name
    role: Annotated[ProjectRole, Field(strict=False)] = ProjectRole.MEMBER


class MemberOut(BaseModel):
    user: str
    role: ProjectRole


class UserCreate(Request):
    name: Name
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    facility_role: Annotated[FacilityRole, Field(strict=False)] = FacilityRole.USER
    token: bool = Field(True, description="also issue a first API token")


class UserOut(Response):
    id: int
    name: str
    email: str | None
    facility_role: FacilityRole


class MeOut(BaseModel):
    name: str
    facility_role: FacilityRole
    default_project: str | None
    projects: list[ProjectOut]


class TokenCreate(Request):
    name: Name = "cli"
    ttl_days: float | None = Field(
        None,
        ge=MIN_TTL_DAYS,
        le=MAX_TTL_DAYS,
        allow_inf_nan=False,
        description="days until it expires: at least one minute (1/1440 of a day), at most "
        "3650; none: it never expires",
    )
    user: Name | None = Field(None, description="admins only: issue for another user")


class PasswordChange(Request):
    current_password: str | None = Field(None, max_length=256, description="if you have one")
    new_password: str = Field(min_length=1, max_length=256)


class PasswordIssued(BaseModel):
    user: str
    password: str  # shown once


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            created_at=_iso(row.created_at),
            expires_at=_iso(row.expires_at),
            revoked_at=_iso(row.revoked_at),
        )


class TokenIssued(TokenOut):
    token: str = Field(description="shown once; only its hash is stored")


class UserCreated(UserOut):
    token: str | None = None


class NodeOut(Response):
    id: str
    site: str
    pool: str
    executor: str
    gpus: int
    gpu_model: str | None
    cpus: int
    memory_mb: int
    schedulable: bool


class SiteOut(BaseModel):
    name: str
    country: str = Field(description="ISO 3166-1 alpha-2: decides which data may go there")
    description: str
    nodes: int


class SiteChange(Request):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. NL")
    description: str | None = Field(None, max_length=500)


class FacilityOut(BaseModel):
    nodes: list[NodeOut]
    jobs_by_state: dict[str, int]
    admission_paused: bool


class AdmissionChange(Request):
    paused: bool


class Health(BaseModel):
    status: str
    version: str


class ErrorDetail(BaseModel):
    field: str | None
    reason: str


class ErrorOut(BaseModel):
    error: str
    message: str
    errors: list[ErrorDetail]
