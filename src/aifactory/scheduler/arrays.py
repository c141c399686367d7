"""An array's running limit (`--array 0-99%8`): never more of its tasks running at once. Pure.

Tasks of an array at its limit are kept out of the round; the policy's starts are then cut so
that a round never starts more tasks of an array than its limit leaves room for (the first in
the policy's order go). A task's stopping attempt still counts: it holds its room until gone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from aifactory.scheduler.decisions import Decision, Start
from aifactory.scheduler.snapshot import PendingJob, Snapshot


def running_tasks(snapshot: Snapshot) -> Counter[int]:
    return Counter(r.array_id for r in snapshot.running if r.array_id is not None)


def at_limit(job: PendingJob, running: Mapping[int, int]) -> bool:
    limit = job.array_throttle
    return job.array_id is not None and limit is not None and running.get(job.array_id, 0) >= limit


def reason(job: PendingJob) -> str:
    return (
        f"array {job.array_id} runs at most {job.array_throttle} of its tasks at once "
        f"(%{job.array_throttle}): this one starts when one of them ends"
    )


def within_limits(
    chosen: Iterable[Decision], pending: Mapping[int, PendingJob], running: Mapping[int, int]
) -> tuple[list[Decision], list[PendingJob]]:
    """The decisions with the starts past an array's limit left out, and those left out."""
    counts: Counter[int] = Counter(running)
    kept: list[Decision] = []
    dropped: list[PendingJob] = []
    for decision in chosen:
        job = pending.get(decision.job_id) if isinstance(decision, Start) else None
        if job is None or job.array_id is None:
            kept.append(decision)
        elif at_limit(job, counts):
            dropped.append(job)
        else:
            counts[job.array_id] += 1
            kept.append(decision)
    return kept, dropped
