"""Response schemas for a job's training progress (services.progress, docs/recipes.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from aifactory.domain import progress
from aifactory.services.progress import JobProgress


def _moment(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


class ProgressRecordOut(BaseModel):
    at: datetime
    event: str
    attempt: int | None
    step: int | None
    loss: float | None
    tokens_per_s: float | None
    eval_loss: float | None
    eval_ppl: float | None
    tokens: int | None
    gpu_count: int | None

    @classmethod
    def of(cls, record: progress.Record) -> ProgressRecordOut:
        return cls(
            at=datetime.fromtimestamp(record.at, UTC),
            event=record.event,
            attempt=record.attempt,
            step=record.step,
            loss=record.loss,
            tokens_per_s=record.tokens_per_s,
            eval_loss=record.eval_loss,
            eval_ppl=record.eval_ppl,
            tokens=record.tokens,
            gpu_count=record.gpu_count,
        )


class LatestOut(BaseModel):
    """The newest value of each figure, each from the newest record that has it."""

    at: datetime | None
    attempt: int | None
    step: int | None
    loss: float | None
    tokens_per_s: float | None
    eval_loss: float | None
    eval_ppl: float | None
    tokens: int | None
    checkpoint_step: int | None
    checkpoint_at: datetime | None

    @classmethod
    def of(cls, found: progress.Latest) -> LatestOut:
        return cls(
            at=_moment(found.at),
            attempt=found.attempt,
            step=found.step,
            loss=found.loss,
            tokens_per_s=found.tokens_per_s,
            eval_loss=found.eval_loss,
            eval_ppl=found.eval_ppl,
            tokens=found.tokens,
            checkpoint_step=found.checkpoint_step,
            checkpoint_at=_moment(found.checkpoint_at),
        )


class PreemptionOut(BaseModel):
    started_at: datetime = Field(description="the preempted run was seen running")
    preempted_at: datetime = Field(description="the run was seen to have ended, preempted")
    checkpoint_at: datetime | None = Field(description="its last checkpoint; none: all lost")
    checkpoint_step: int | None
    last_step: int | None
    lost_steps: int | None = Field(description="steps done after the last checkpoint")
    gpus: int
    lost_gpu_s: float = Field(description="(preempted_at − checkpoint_at or started_at) × gpus")

    @classmethod
    def of(cls, cost: progress.Preemption) -> PreemptionOut:
        return cls(
            started_at=datetime.fromtimestamp(cost.run.started_at, UTC),
            preempted_at=datetime.fromtimestamp(cost.run.preempted_at, UTC),
            checkpoint_at=_moment(cost.checkpoint_at),
            checkpoint_step=cost.checkpoint_step,
            last_step=cost.last_step,
            lost_steps=cost.lost_steps,
            gpus=cost.gpus,
            lost_gpu_s=round(cost.lost_gpu_s, 3),
        )


class ProgressOut(BaseModel):
    job_id: int
    checkpoint_dir: str | None = Field(
        description="the job's checkpoint directory (AIFACTORY_CHECKPOINT_DIR), on the facility"
    )
    records: int = Field(description="progress records read")
    truncated: bool = Field(description="only the progress file's tail was read")
    latest: LatestOut | None = Field(description="none: the job reported no progress yet")
    recent: list[ProgressRecordOut] = Field(description="the last records, oldest first")
    train_loss: list[tuple[float, float]] = Field(description="(step, loss), thinned")
    eval_loss: list[tuple[float, float]] = Field(description="(step, eval loss), thinned")
    preemptions: list[PreemptionOut]
    lost_gpu_s: float = Field(description="GPU-seconds lost to preemptions, all told")

    @classmethod
    def of(cls, found: JobProgress) -> ProgressOut:
        return cls(
            job_id=found.job_id,
            checkpoint_dir=str(found.checkpoint_dir) if found.checkpoint_dir else None,
            records=found.records,
            truncated=found.truncated,
            latest=LatestOut.of(found.latest) if found.latest else None,
            recent=[ProgressRecordOut.of(r) for r in found.recent],
            train_loss=found.train_loss,
            eval_loss=found.eval_loss,
            preemptions=[PreemptionOut.of(p) for p in found.preemptions],
            lost_gpu_s=round(found.lost_gpu_s, 3),
        )
