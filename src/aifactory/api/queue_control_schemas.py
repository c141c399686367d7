"""Response schemas of queue control (services.queue_control): one answer per job of a bulk
cancel. The request bodies are the faces' (faces.inputs: JobHold, JobUpdate, JobCancelMany)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from aifactory.api.schemas import JobOut
from aifactory.services.queue_control import CancelOutcome, CancelResult


class CancelResultOut(BaseModel):
    job_id: int
    outcome: CancelOutcome = Field(
        description="cancelled (it was waiting), stopping (it runs: the control loop stops "
        "it), already ended, not found (or not yours to see), refused (yours to see, not to "
        "cancel); on a dry run, what would happen"
    )
    message: str
    job: JobOut | None = Field(description="the job as it is now; none when not found")

    @classmethod
    def of(cls, result: CancelResult) -> CancelResultOut:
        job = result.job
        return cls(
            job_id=result.job_id,
            outcome=result.outcome,
            message=result.message,
            job=JobOut.of(job, job.project, job.owner) if job is not None else None,
        )
