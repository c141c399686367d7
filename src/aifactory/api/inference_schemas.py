"""Endpoints and inference keys as the API takes and gives them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aifactory.api.schemas import MAX_ID, Name, Request
from aifactory.api.units import moment_at
from aifactory.services.endpoints import EndpointSpec, EndpointView
from aifactory.services.inference_keys import KeyView


class EndpointCreate(Request):
    name: Name = Field(description="the model's name at the gateway (/v1)")
    project: Name
    source_job: int = Field(
        ge=1, le=MAX_ID, description="a succeeded job whose checkpoints it serves"
    )
    replicas: int = Field(1, ge=1, le=16)
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
        )


class ReplicaOut(BaseModel):
    job_id: int
    state: str


class EndpointOut(BaseModel):
    name: str
    project: str
    source_job: int
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

    @classmethod
    def of(cls, view: EndpointView) -> EndpointOut:
        return cls(
            name=view.name,
            project=view.project,
            source_job=view.source_job,
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
        )


class KeyCreate(Request):
    name: Name
    project: Name
    models: list[Name] | None = Field(None, max_length=64, description="none: every model")
    token_budget: int | None = Field(None, ge=1, le=10**15)
    ttl_days: float | None = Field(None, gt=0, le=3650)


class KeyOut(BaseModel):
    id: int
    name: str
    project: str
    prefix: str
    models: list[str] | None
    token_budget: int | None
    tokens_used: int
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
            created_by=view.created_by,
            created_at=moment_at(view.created_at),
            expires_at=moment_at(view.expires_at) if view.expires_at is not None else None,
            revoked_at=moment_at(view.revoked_at) if view.revoked_at is not None else None,
        )


class KeyMade(KeyOut):
    key: str = Field(description="the key itself: shown this once, kept only as its SHA-256")
