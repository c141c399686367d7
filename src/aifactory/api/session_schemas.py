"""Interactive sessions as the API gives them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aifactory.api.units import moment_at, money
from aifactory.services.interactive import SessionView


class SessionOut(BaseModel):
    id: int = Field(description="its job's id (aifactory job ID shows the job)")
    project: str
    kind: str
    owner: str
    state: str
    state_reason: str | None
    gpus: int
    cpus: int
    memory_mb: int
    datasets: list[str]
    environment: str | None
    submitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    time_limit_s: int
    time_left_s: float | None = Field(description="until its time limit stops it (running)")
    idle_timeout_s: float
    ready: bool = Field(description="its notebook server answers")
    idle_for_s: float | None = Field(description="since its last activity (running)")
    cull_in_s: float | None = Field(description="stopped if idle this much longer (running)")
    busy: bool = Field(description="a kernel runs or a notebook is open")
    stopping: bool
    culled_reason: str | None = Field(description="why the facility stopped it")
    cost: str = Field(description="€ so far: its GPU and CPU time at its programme's tariff")

    @classmethod
    def of(cls, view: SessionView, now: float) -> SessionOut:
        return cls(
            id=view.id,
            project=view.project,
            kind=view.kind,
            owner=view.owner,
            state=view.state,
            state_reason=view.state_reason,
            gpus=view.gpus,
            cpus=view.cpus,
            memory_mb=view.memory_mb,
            datasets=view.datasets,
            environment=view.environment,
            submitted_at=moment_at(view.submitted_at),
            started_at=moment_at(view.started_at) if view.started_at is not None else None,
            ended_at=moment_at(view.ended_at) if view.ended_at is not None else None,
            time_limit_s=view.time_limit_s,
            time_left_s=view.time_left_s(now),
            idle_timeout_s=view.idle_timeout_s,
            ready=view.ready,
            idle_for_s=view.idle_for_s,
            cull_in_s=view.cull_in_s(),
            busy=view.busy,
            stopping=view.stopping,
            culled_reason=view.culled_reason,
            cost=money(view.cost_cents),
        )


class SessionOpened(BaseModel):
    url: str = Field(
        description="opens the session in a browser: a one-use link, valid for a minute"
    )
