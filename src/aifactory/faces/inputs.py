"""The input types both faces check alike: a form field and the API's field of the same name
take the same values and refuse the same ones (`web.forms.valid` checks a field with its type).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path
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
from aifactory.domain.arrays import parse_array
from aifactory.domain.datasets import ENV_PREFIX
from aifactory.domain.images import IMAGE_REF
from aifactory.domain.interactive import (
    DEFAULT_IDLE_S,
    MAX_IDLE_S,
    MIN_IDLE_S,
    Kind,
    SessionSpec,
)
from aifactory.domain.jobs import JobSpec, JobState, Network

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
JobRef = Annotated[int, Field(ge=1, le=MAX_ID)]  # a job named in a body (a dependency)
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
    after_ok: list[JobRef] = Field(
        default_factory=list, max_length=32, description="start only after these jobs succeeded"
    )
    after_any: list[JobRef] = Field(
        default_factory=list, max_length=32, description="start only after these jobs ended"
    )
    after_not_ok: list[JobRef] = Field(
        default_factory=list,
        max_length=32,
        description="start only after these jobs failed, timed out or were cancelled",
    )
    array: str | None = Field(
        None,
        max_length=200,
        description="an array of tasks, one job each: 0-99, 0-99:10, 1,3,8-10, optionally "
        "%N (at most N running at once); each task's index is in AIFACTORY_ARRAY_INDEX",
    )

    notify: bool = Field(
        False,
        description="tell its owner when it ends (e-mail and/or webhook, as their "
        "notification preferences say), even if they do not follow every job's end",
    )
    one_block: bool = Field(
        False,
        description="a job on several nodes must run inside one network block (leaf switch "
        "or NVLink domain): it waits for one rather than spread (Slurm's --switches=1); "
        "without it the scheduler still prefers one block",
    )
    environment: Name | None = Field(
        None,
        description="a Python environment of the project's or the facility's "
        "(`aifactory env create`), mounted read-only with its python first on PATH",
    )
    image: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=IMAGE_REF,
        description="an image an admin imported (`aifactory images import`), run by the "
        "facility's OCI runtime; not with environment",
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

    @field_validator("array")
    @classmethod
    def _array(cls, text: str | None) -> str | None:
        if text is not None:
            parse_array(text)  # its ValueError names what is wrong
        return text

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
        if self.environment is not None and self.image is not None:
            raise ValueError("give at most one of 'environment' and 'image'")
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
            environment=self.environment,
            image=self.image,
            notify=self.notify,
            one_block=self.one_block,
            inputs=tuple(dict.fromkeys(self.inputs)),
            array_indices=parse_array(self.array).indices if self.array else (),
            array_throttle=parse_array(self.array).throttle if self.array else None,
            after=tuple(
                dict.fromkeys(
                    [("ok", j) for j in self.after_ok]
                    + [("any", j) for j in self.after_any]
                    + [("not-ok", j) for j in self.after_not_ok]
                )
            ),
        )


Title = Annotated[str, Field(min_length=1, max_length=200)]

# Ids in paths: a number the database can hold, or 422 (not a 404 after a failed query).
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]
GrantId = Annotated[int, Path(ge=1, le=MAX_ID)]
ProposalId = Annotated[int, Path(ge=1, le=MAX_ID)]
InferenceKeyId = Annotated[int, Path(ge=1, le=MAX_ID)]

# ---- inference keys (services.inference_keys): the API's body and the portal's form ----------
KeyModels = Annotated[list[Name], Field(max_length=64)]  # the models a key may call
TokenBudget = Annotated[int, Field(ge=1, le=10**15)]  # prompt and completion tokens together
KeyTtlDays = Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)]
KeyEuros = Annotated[Decimal, Field(strict=False, gt=0, le=10**9, allow_inf_nan=False)]
KeyRate = Annotated[int, Field(ge=1, le=10**12)]  # requests or tokens per minute


# ---- queue control: hold, update, cancel many (services.queue_control) ----------------------
MAX_TIME_LIMIT_S = 30 * 86400  # what a submission may ask (JobSubmit.time_limit_s)


class JobHold(Request):
    reason: str | None = Field(
        None, min_length=1, max_length=500, description="why: shown with the hold"
    )


class JobUpdate(Request):
    """A waiting job's new name, time limit or priority; a field left out stays as it is."""

    name: str | None = Field(None, min_length=1, max_length=128)
    time_limit_s: int | None = Field(None, ge=1, le=MAX_TIME_LIMIT_S)
    priority: Priority | None = Field(None, description="0 or below; above 0: operators and admins")


class JobCancelMany(Request):
    """Job ids, or filters that every job cancelled matches (at least one): never both."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=1000, description="these jobs"
    )
    states: list[Annotated[JobState, Field(strict=False)]] = Field(
        default_factory=list,
        max_length=len(JobState),
        description="jobs in one of these states (not an ended one); default: every state "
        "not ended",
    )
    name: str | None = Field(
        None, min_length=1, max_length=128, description="jobs whose name holds this"
    )
    mine: bool = Field(False, description="only your own jobs")
    project: Name | None = Field(None, description="only this project's jobs")
    dry_run: bool = Field(False, description="say what would be cancelled; change nothing")


class SessionStart(Request):
    """An interactive session: JupyterLab (or a shell in it) as a job of the project."""

    project: Name | None = None
    kind: Annotated[Kind, Field(strict=False)] = Field(
        Kind.JUPYTER, description="jupyter (JupyterLab) or shell (a terminal)"
    )
    gpus: int = Field(0, ge=0, le=64)
    cpus: int = Field(1, ge=1, le=4096)
    memory_mb: int = Field(4096, ge=256, le=64 * 1024 * 1024)
    gpu_model: str | None = Field(None, min_length=1, max_length=64)
    time_limit_s: int = Field(8 * 3600, ge=60, le=30 * 86400)
    idle_timeout_s: float = Field(
        DEFAULT_IDLE_S,
        ge=MIN_IDLE_S,
        le=MAX_IDLE_S,
        allow_inf_nan=False,
        description="stopped after this long with no kernel activity and no connection",
    )
    datasets: list[Annotated[str, Field(pattern=DATASET_REF)]] = Field(
        default_factory=list,
        max_length=16,
        description="datasets it reads: name or name@version; each path comes in "
        "AIFACTORY_DATASET_<NAME>",
    )
    environment: Name | None = Field(
        None, description="a Python environment with jupyterlab (default: the facility's)"
    )

    def spec(self) -> SessionSpec:
        return SessionSpec(
            project=self.project,
            kind=self.kind,
            gpus=self.gpus,
            cpus=self.cpus,
            memory_mb=self.memory_mb,
            gpu_model=self.gpu_model,
            time_limit_s=self.time_limit_s,
            idle_timeout_s=self.idle_timeout_s,
            datasets=tuple(self.datasets),
            environment=self.environment,
        )
