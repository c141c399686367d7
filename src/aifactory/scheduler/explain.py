"""Why a pending job is not running, and when it may start. Pure, like `schedule`.

The estimate plans the queue in order (no backfill) as if every job ran to its user time
limit: each job starts at the earliest moment, no earlier than the job ahead of it, when enough
nodes have room. Jobs usually end before their limits and backfill starts small jobs sooner,
so the estimate is usually cautious; but a job behind the head can also be overtaken by a
backfilled one, so it is an estimate, never a promise. Only the first `PLANNED` jobs of the
queue get one.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass

from aifactory.domain.resources import Resources
from aifactory.scheduler.placement import FreeIndex
from aifactory.scheduler.snapshot import PendingJob, Snapshot

PLANNED = 500


@dataclass(frozen=True, slots=True)
class Explanation:
    job_id: int
    position: int  # 1 = next in line
    reason: str
    estimated_start: float | None  # None: not planned (beyond PLANNED, or can never start)


def explain(snapshot: Snapshot, now: float) -> dict[int, Explanation]:
    queue = sorted(snapshot.pending, key=lambda j: (j.submitted_at, j.job_id))
    models = snapshot.gpu_model_of()
    free_now = FreeIndex(snapshot.free_by_node())
    capacity = FreeIndex({n.id: n.capacity for n in snapshot.nodes if n.schedulable})
    possible = [job for job in queue[:PLANNED] if capacity.place(job, models) is not None]
    starts = _plan(snapshot, possible, models, now)
    out = {}
    for position, job in enumerate(queue, start=1):
        reason = _reason(job, position, free_now, capacity, models)
        out[job.job_id] = Explanation(job.job_id, position, reason, starts.get(job.job_id))
    return out


def _reason(
    job: PendingJob,
    position: int,
    free_now: FreeIndex,
    capacity: FreeIndex,
    models: Mapping[str, str | None],
) -> str:
    ask = _ask(job)
    if capacity.place(job, models) is None:
        return f"can never start here: no {job.nodes} node(s) can each hold {ask}"
    if free_now.place(job, models) is not None:
        return "fits now: starts at the next scheduling round unless an earlier job takes it"
    best = max(free_now.free.values(), key=lambda r: r.gpus, default=Resources())
    ahead = f"; {position - 1} job(s) ahead in the queue" if position > 1 else ""
    return f"waiting for room: needs {ask}, the emptiest node has {best.gpus} GPU(s) free{ahead}"


def _ask(job: PendingJob) -> str:
    model = f" of model {job.gpu_model}" if job.gpu_model and job.per_node.gpus else ""
    return (
        f"{job.per_node.gpus} GPU(s){model}, {job.per_node.cpus} CPU(s) and "
        f"{job.per_node.memory_mb} MB"
    )


def _plan(
    snapshot: Snapshot, queue: list[PendingJob], models: Mapping[str, str | None], now: float
) -> dict[int, float]:
    index = FreeIndex(snapshot.free_by_node())
    releases: list[tuple[float, int, dict[str, Resources]]] = [
        (max(now, r.expected_end), r.job_id, dict(r.placement)) for r in snapshot.running
    ]
    heapq.heapify(releases)
    clock, starts = now, {}
    for job in queue:
        placement = index.place(job, models)
        while placement is None and releases:
            clock = max(clock, releases[0][0])
            while releases and releases[0][0] <= clock:
                _, _, freed = heapq.heappop(releases)
                index.give({n: r for n, r in freed.items() if n in index.free})
            placement = index.place(job, models)
        if placement is None:  # cannot happen for a job that fits an empty facility
            continue
        starts[job.job_id] = clock
        index.take(placement)
        if math.isfinite(job.time_limit_s):
            heapq.heappush(releases, (clock + job.time_limit_s, job.job_id, placement))
    return starts
