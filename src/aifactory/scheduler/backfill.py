"""EASY backfill's reservation for the blocked head of the queue.

The earliest start is found by releasing running jobs in order of their expected ends (start +
user time limit) until the head fits; the nodes it would take then are reserved. A job that
cannot fit even on an empty facility gets no reservation at the end of time: `start_at` is
infinite and it reserves nothing, so it does not block the queue. Nodes whose maintenance the
head would run into at a candidate start are left out there; the end of a window is a candidate
start too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aifactory.domain.resources import Resources
from aifactory.scheduler import maintenance
from aifactory.scheduler.decisions import Start
from aifactory.scheduler.placement import FreeIndex, take
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
    *,
    free_now: Mapping[str, Resources] | None = None,
) -> Reservation:
    """`free_now`: the free capacity with `started_now` already taken, when the caller has it
    (saves recomputing it from the snapshot)."""
    if free_now is None:
        free = snapshot.free_by_node()
        for _, start in started_now:
            take(free, start.placement)
    else:
        free = dict(free_now)
    index = FreeIndex(free)
    models = snapshot.kinds()
    just_started = [
        RunningJob(job.job_id, job.project, start.placement, now, job.time_limit_s)
        for job, start in started_now
    ]
    ending = sorted([*snapshot.running, *just_started], key=lambda r: (r.expected_end, r.job_id))
    windows = snapshot.maintenance
    # Moments the head might start: as running jobs end (freeing their room), or as a window
    # ends (freeing its nodes). Room freed by a job stays freed.
    events: list[tuple[float, dict[str, Resources]]] = [
        (max(now, job.expected_end), {n: used for n, used in job.placement.items() if n in free})
        for job in ending
    ]
    events += [(end, {}) for end in maintenance.ends_after(windows, now)]
    events.sort(key=lambda event: event[0])
    for at, freed in [(now, {}), *events]:
        index.give(freed)
        if not index.could_fit(head):
            continue
        barred = maintenance.barred(windows, at, head.time_limit_s)
        placement = index.place(head, models, barred)
        if placement is not None:
            return Reservation(at, frozenset(placement))
    return Reservation(math.inf, frozenset())
