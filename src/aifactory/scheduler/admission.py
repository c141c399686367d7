"""Whether a waiting job may start at all: its hold, if it has one. Pure.

A job is held, whatever room the facility has, when its project may not read a dataset it
declared (no grant valid now, the version gone or to be erased: `domain.datasets.read_refusal`)
or, where budgets are enforced, when no allocation of its project can pay for its most
(GPUs × time limit: `domain.programmes.payer`). The data rule comes first: a grant is the
harder thing to mend. CPU-only work is metered and billed but never held for GPU-hours.

These are the same rules the control loop applies again when it commits an admission, so a
grant revoked or money spent since the snapshot still stops the job.
"""

from __future__ import annotations

from aifactory.domain.datasets import DATA_HOLD, read_refusal
from aifactory.domain.dependencies import (
    AFTER_HOLD,
    DependencyState,
    never_met,
    still_waiting,
)
from aifactory.domain.jobs import JobState
from aifactory.domain.programmes import payer
from aifactory.scheduler.snapshot import Admission, PendingJob

BUDGET_HOLD = "no budget: "  # how a job held for money says so
PAID = "the project's allocation can pay for it now"
READABLE = "its project may read its datasets now"
ENDED = "the jobs it waited for have ended as it needs"


def doomed(job: PendingJob, facts: Admission) -> str | None:
    """Why `job` can never run (a job it depends on ended the wrong way); None: it may yet."""
    return never_met(_dependencies(job, facts))


def hold_reason(job: PendingJob, facts: Admission, now: float) -> str | None:
    """Why `job` may not start now, whatever room there is; None: it may, if it fits.
    Dependencies first: until they end, nothing else about the job is settled."""
    if (waiting := still_waiting(_dependencies(job, facts))) is not None:
        return waiting
    for use in facts.data.get(job.job_id, ()):
        refusal = read_refusal(use)
        if refusal is not None:
            return DATA_HOLD + refusal
    if not facts.budgets_enforced or job.gpus == 0:
        return None
    choice = payer(facts.funds.get(job.project, ()), job.gpu_ms, job.gpu_model, now)
    return BUDGET_HOLD + choice if isinstance(choice, str) else None


def _dependencies(job: PendingJob, facts: Admission) -> list[DependencyState]:
    # A job it depends on that no longer exists did not succeed: count it as cancelled.
    return [DependencyState(d, facts.states.get(d.job_id, JobState.CANCELLED)) for d in job.after]


def releasable(job: PendingJob) -> bool:
    """Whether a round may release this held job once nothing holds it: only the holds made
    here (dependencies, data, money); a hold a person made (`aifactory hold`) waits for a
    person."""
    return (job.held or "").startswith((AFTER_HOLD, DATA_HOLD, BUDGET_HOLD))


def release_reason(job: PendingJob) -> str:
    """What a held job that may go now is told, by what held it."""
    held = job.held or ""
    if held.startswith(AFTER_HOLD):
        return ENDED
    return READABLE if held.startswith(DATA_HOLD) else PAID
