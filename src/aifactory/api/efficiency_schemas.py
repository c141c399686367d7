"""Response schemas of efficiency reports (services.efficiency, docs/efficiency.md).

Every figure a job's executor measured is null where it was not measured, never 0; asked
figures (CPUs, memory, GPUs, wall time) are always there. Times in seconds, memory in MB,
efficiencies and utilisation in percent.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aifactory.api.units import moment_at
from aifactory.services.efficiency import AttemptUse, Efficiency, Use

NOT_MEASURED = "null: not measured"


class UseOut(BaseModel):
    """Asked against used, over one attempt or the whole job."""

    wall_s: float
    cpus: int
    cpu_s: float = Field(description="asked: CPUs × wall time, in CPU-seconds")
    cpu_time_s: float | None = Field(description=f"CPU time used; {NOT_MEASURED}")
    cpu_efficiency_pct: float | None = Field(description="CPU time / asked CPU-seconds")
    memory_mb: int = Field(description="memory held")
    peak_rss_mb: float | None = Field(
        description=f"the most memory its processes held at once (sampled); {NOT_MEASURED}"
    )
    memory_efficiency_pct: float | None
    gpus: int
    gpu_s: float = Field(description="asked: GPUs × wall time, in GPU-seconds")
    gpu_utilisation_pct: float | None = Field(
        description=f"mean share of time its GPUs were busy; {NOT_MEASURED} (or no GPU)"
    )
    peak_gpu_memory_mb: float | None = Field(
        description=f"the most memory one of its GPUs held; {NOT_MEASURED} (or no GPU)"
    )
    idle_gpu_s: float = Field(description="GPU-seconds held but idle (0 where not measured)")
    idle_cpu_s: float = Field(description="CPU-seconds held but idle (0 where not measured)")

    @classmethod
    def of(cls, use: Use) -> UseOut:
        return cls(**_figures(use))


class AttemptEfficiencyOut(UseOut):
    attempt: int
    started_at: datetime
    ended_at: datetime

    @classmethod
    def of_attempt(cls, found: AttemptUse) -> AttemptEfficiencyOut:
        return cls(
            attempt=found.attempt,
            started_at=moment_at(found.started_at),
            ended_at=moment_at(found.ended_at),
            **_figures(found.use),
        )


class EfficiencyOut(BaseModel):
    job_id: int
    name: str
    project: str
    user: str
    state: str
    time_limit_s: int
    attempts: list[AttemptEfficiencyOut] = Field(description="each ended attempt, in order")
    overall: UseOut | None = Field(description="the whole job; null: no attempt ended yet")
    hints: list[str] = Field(
        description="what to ask for next time, where it asked far more than it used"
    )

    @classmethod
    def of(cls, found: Efficiency) -> EfficiencyOut:
        return cls(
            job_id=found.job_id,
            name=found.name,
            project=found.project,
            user=found.owner,
            state=found.state,
            time_limit_s=found.time_limit_s,
            attempts=[AttemptEfficiencyOut.of_attempt(a) for a in found.attempts],
            overall=UseOut.of(found.overall) if found.overall is not None else None,
            hints=list(found.hints),
        )


def _figures(use: Use) -> dict[str, float | int | None]:
    return {
        "wall_s": use.wall_s,
        "cpus": use.cpus,
        "cpu_s": use.cpu_s,
        "cpu_time_s": use.cpu_time_s,
        "cpu_efficiency_pct": use.cpu_efficiency_pct,
        "memory_mb": use.memory_mb,
        "peak_rss_mb": use.peak_rss_mb,
        "memory_efficiency_pct": use.memory_efficiency_pct,
        "gpus": use.gpus,
        "gpu_s": use.gpu_s,
        "gpu_utilisation_pct": use.gpu_utilisation_pct,
        "peak_gpu_memory_mb": use.peak_gpu_memory_mb,
        "idle_gpu_s": use.idle_gpu_s,
        "idle_cpu_s": use.idle_cpu_s,
    }
