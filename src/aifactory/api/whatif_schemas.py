"""Request and response schemas of the scheduler what-if routes (services.whatif)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from aifactory.api.schemas import Request
from aifactory.services.whatif import MAX_GPUS, MAX_JOBS, WORKLOADS, Ask, Outcome, Run, Setting
from aifactory.sim.metrics import KEYS
from aifactory.sim.replay import POLICIES


class SettingIn(Request):
    """One side of the comparison: a policy and the knobs to change from its defaults."""

    policy: str = Field(
        min_length=1, max_length=32, description=f"one of {', '.join(POLICIES)}", examples=["slurm"]
    )
    backfill: bool | None = Field(None, description="fifo, easy and slurm only; unset: default")
    fairness_weight: float | None = Field(
        None, ge=0, le=10, description="fairshare only: how hard heavy recent use is penalised"
    )
    half_life_h: float | None = Field(
        None, ge=1, le=24 * 365, description="slurm and fairshare: how fast past usage fades"
    )

    def setting(self) -> Setting:
        return Setting(self.policy, self.backfill, self.fairness_weight, self.half_life_h)

    @classmethod
    def of(cls, setting: Setting) -> SettingIn:
        return cls(
            policy=setting.policy,
            backfill=setting.backfill,
            fairness_weight=setting.fairness_weight,
            half_life_h=setting.half_life_h,
        )


class WhatIfIn(Request):
    workload: str = Field(
        min_length=1,
        max_length=64,
        description=f"one of {', '.join(WORKLOADS)} ('history': the facility's own finished jobs)",
        examples=["itp-merged"],
    )
    jobs: int = Field(
        300, ge=1, le=MAX_JOBS, description="the first N jobs of a trace; the latest N of history"
    )
    gpus: int | None = Field(
        None,
        ge=1,
        le=MAX_GPUS,
        description="GPUs to replay on, in 8-GPU nodes; unset: the trace's own size or the "
        "facility's own nodes",
    )
    a: SettingIn
    b: SettingIn

    def ask(self) -> Ask:
        return Ask(self.workload, self.jobs, self.a.setting(), self.b.setting(), self.gpus)


class OutcomeOut(BaseModel):
    side: str = Field(description="A or B")
    label: str
    figures: dict[str, float] = Field(
        description=f"sim.metrics figures: {', '.join(KEYS)} (times in seconds, utilisation "
        "and fairness as shares of 1)"
    )
    unfinished: int = Field(description="jobs that could never start on the replayed cluster")
    busy: list[tuple[float, float]] = Field(
        description="(hours since the first submit, share of GPUs busy) over the replay"
    )

    @classmethod
    def of(cls, outcome: Outcome) -> OutcomeOut:
        return cls(
            side=outcome.side,
            label=outcome.label,
            figures=outcome.figures,
            unfinished=outcome.unfinished,
            busy=list(outcome.busy),
        )


class WhatIfOut(BaseModel):
    id: int
    state: str = Field(description="queued, running, done or failed")
    workload: str
    jobs: int
    gpus: int | None
    a: SettingIn
    b: SettingIn
    by: str = Field(description="who asked")
    submitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    message: str | None = Field(description="why it failed")
    replayed_jobs: int
    replayed_gpus: int
    progress: float = Field(description="share of the replay done, 0 to 1")
    outcomes: list[OutcomeOut] = Field(description="A and B, once done")

    @classmethod
    def of(cls, run: Run) -> WhatIfOut:
        return cls(
            id=run.id,
            state=run.state,
            workload=run.ask.workload,
            jobs=run.ask.jobs,
            gpus=run.ask.gpus,
            a=SettingIn.of(run.ask.a),
            b=SettingIn.of(run.ask.b),
            by=run.by,
            submitted_at=datetime.fromtimestamp(run.submitted_at, UTC),
            started_at=_at(run.started_at),
            ended_at=_at(run.ended_at),
            message=run.message,
            replayed_jobs=run.replayed_jobs,
            replayed_gpus=run.replayed_gpus,
            progress=run.progress,
            outcomes=[OutcomeOut.of(o) for o in run.outcomes],
        )


def _at(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
