"""EASY backfill's reservation for the blocked head of the queue.

The earliest start is found by releasing running jobs in order of their expected ends (start +
user time limit) until the head fits; the nodes it would take then are reserved. A job that
cannot fit even on an empty facility gets no reservation at the end of time: `start_at` is
infinite and it reserves nothing, so it does not block the queue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aifactory.scheduler.decisions import Start
from aifactory.scheduler.placement import place, take
from aifactory.scheduler.snapshot import PendingJob, RunningJob, Snapshot


@dataclass(frozen=True, slots=True)
class Reservation:
    start_at: float
    nodes: frozenset[str]


def reserve(
    head: PendingJob,
    snapshot: Snapshot,
    started_now: Sequence[tuple[PendingJob, Start]],
    now: float,
) -> Reservation:
    free = snapshot.free_by_node()
    models = snapshot.gpu_model_of()
    just_started = [
        RunningJob(job.job_id, job.project, start.placement, now, job.time_limit_s)
        for job, start in started_now
    ]
    for _, start in started_now:
        take(free, start.placement)
    ending = sorted([*snapshot.running, *just_started], key=lambda r: (r.expected_end, r.job_id))
    for job in ending:
        for node_id, used in job.placement.items():
            if node_id in free:
                free[node_id] = free[node_id] + used
        placement = place(head, free, models)
        if placement is not None:
            return Reservation(max(now, job.expected_end), frozenset(placement))
    return Reservation(math.inf, frozenset())
