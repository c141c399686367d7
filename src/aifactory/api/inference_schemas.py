"""Endpoints and inference keys as the API takes and gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from aifactory.api.schemas import MAX_ID, Name, Request
from aifactory.api.units import moment_at, money
from aifactory.faces.inputs import KeyEuros, KeyModels, KeyRate, KeyTtlDays, TokenBudget
from aifactory.services.endpoints import EndpointSpec, EndpointView
from aifactory.services.inference_keys import KeyLimits, KeyView


class EndpointCreate(Request):
    name: Name = Field(description="the model's name at the gateway (/v1)")
    project: Name
    source_job: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="engine recipe: a succeeded job whose checkpoints it serves",
    )
    engine: Literal["recipe", "vllm"] = Field(
        "recipe", description="recipe: the Dutch GPT recipe's engine; vllm: vLLM (GPUs)"
    )
    dataset: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="engine vllm: the dataset holding the model (Hugging Face layout)"
    )
    engine_args: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=64, description="engine vllm: its own options"
    )
    replicas: int = Field(1, ge=0, le=16, description="the least that run (not preemptible)")
    max_replicas: int | None = Field(
        None, ge=1, le=16, description="the most the autoscaler runs; none: as many as replicas"
    )
    concurrency: int = Field(4, ge=1, le=256, description="requests one replica serves at once")
    time_limit_s: float = Field(
        86400.0,
        ge=60,
        le=30 * 86400,
        allow_inf_nan=False,
        description="each replica's time limit (its allocation reserves GPUs × this); a replica "
        "that reaches it is replaced",
    )
    idle_timeout_s: float = Field(
        900.0,
        ge=1,
        le=7 * 86400,
        allow_inf_nan=False,
        description="with replicas 0: none runs after this long without requests",
    )
    cpus: int = Field(1, ge=1, le=4096)
    memory_mb: int = Field(2048, ge=256, le=64 * 1024 * 1024)
    gpus: int = Field(0, ge=0, le=1024)
    environment: Name | None = Field(None, description="a Python environment with PyTorch")

    def spec(self) -> EndpointSpec:
        return EndpointSpec(
            self.name,
            self.source_job,
            self.replicas,
            self.cpus,
            self.memory_mb,
            self.gpus,
            self.environment,
            self.max_replicas,
            self.concurrency,
            self.idle_timeout_s,
            self.time_limit_s,
            self.engine,
            self.dataset,
            tuple(self.engine_args),
        )


class ReplicaOut(BaseModel):
    job_id: int
    state: str


class EndpointOut(BaseModel):
    name: str
    project: str
    source_job: int | None
    engine: str
    dataset: str | None
    engine_args: list[str]
    replicas: int
    cpus: int
    memory_mb: int
    gpus: int
    created_by: str
    created_at: datetime
    running: list[ReplicaOut] = Field(description="its replica jobs that have not ended")
    requests: int
    prompt_tokens: int
    completion_tokens: int
    max_replicas: int
    concurrency: int
    idle_timeout_s: float
    time_limit_s: float
    environment: str | None
    draining: list[int] = Field(description="replica jobs no request is sent to any more")
    trouble: str | None = Field(description="why no replica is being started, if so")
    cost_eur: str = Field(description="what its requests cost, at the tariffs they were asked at")

    @classmethod
    def of(cls, view: EndpointView) -> EndpointOut:
        return cls(
            name=view.name,
            project=view.project,
            source_job=view.source_job,
            engine=view.engine,
            dataset=view.dataset,
            engine_args=view.engine_args,
            replicas=view.replicas,
            cpus=view.cpus,
            memory_mb=view.memory_mb,
            gpus=view.gpus,
            created_by=view.created_by,
            created_at=moment_at(view.created_at),
            running=[ReplicaOut(job_id=r.job_id, state=r.state) for r in view.running],
            requests=view.requests,
            prompt_tokens=view.prompt_tokens,
            completion_tokens=view.completion_tokens,
            max_replicas=view.max_replicas,
            concurrency=view.concurrency,
            idle_timeout_s=view.idle_timeout_s,
            time_limit_s=view.time_limit_s,
            environment=view.environment,
            draining=view.draining,
            trouble=view.trouble,
            cost_eur=money(view.cost_cents),
        )


class KeyCreate(Request):
    name: Name
    project: Name
    models: KeyModels | None = Field(None, description="none: every model")
    token_budget: TokenBudget | None = None
    budget_eur: KeyEuros | None = Field(
        None, description='euros, e.g. "25.00": its requests at the programme\'s token tariffs'
    )
    rpm: KeyRate | None = Field(None, description="requests per minute, at most")
    tpm: KeyRate | None = Field(None, description="tokens per minute, at most")
    ttl_days: KeyTtlDays | None = None

    def limits(self) -> KeyLimits:
        return KeyLimits(self.token_budget, self.budget_eur, self.rpm, self.tpm)


class KeyOut(BaseModel):
    id: int
    name: str
    project: str
    prefix: str
    models: list[str] | None
    token_budget: int | None
    tokens_used: int
    budget_eur: str | None
    spent_eur: str
    rpm: int | None
    tpm: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, view: KeyView) -> KeyOut:
        return cls(
            id=view.id,
            name=view.name,
            project=view.project,
            prefix=view.prefix,
            models=view.models,
            token_budget=view.token_budget,
            tokens_used=view.tokens_used,
            budget_eur=money(view.budget_cents) if view.budget_cents is not None else None,
            spent_eur=money(view.spent_cents),
            rpm=view.rpm,
            tpm=view.tpm,
            created_by=view.created_by,
            created_at=moment_at(view.created_at),
            expires_at=moment_at(view.expires_at) if view.expires_at is not None else None,
            revoked_at=moment_at(view.revoked_at) if view.revoked_at is not None else None,
        )


class KeyMade(KeyOut):
    key: str = Field(description="the key itself: shown this once, kept only as its SHA-256")
