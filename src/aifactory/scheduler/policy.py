"""Policies and the one entry point, `schedule`.

`fifo` here is first-come-first-served with EASY backfill on user time limits: the first job that
does not fit gets a reservation at the earliest time enough running jobs will have ended (by
their limits); a later job may jump ahead only if it cannot delay that reservation. Issue #3
brings the Slurm baseline and the fair-share policy behind this same signature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aifactory.scheduler.backfill import Reservation, reserve
from aifactory.scheduler.decisions import Decision, Start
from aifactory.scheduler.placement import FreeIndex
from aifactory.scheduler.snapshot import PendingJob, Snapshot


@dataclass(frozen=True, slots=True)
class Policy:
    name: str = "fifo"
    backfill: bool = True


# The policies a facility (and the simulator) can be configured with, by the one name used in
# settings, CLI, API and reports. Issue #3 adds slurm and fairshare (and the sim-only oracle).
NAMED: dict[str, Policy] = {
    "fifo": Policy(name="fifo", backfill=False),  # submit order, head-of-line blocking
    "easy": Policy(name="fifo", backfill=True),  # FIFO with EASY backfill on user time limits
}
DEFAULT = "easy"


def policy_named(name: str) -> Policy:
    try:
        return NAMED[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(NAMED)}") from None


ALGORITHMS = ("fifo",)  # what `Policy.name` selects; the named policies above configure them


def schedule(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
    if policy.name not in ALGORITHMS:
        raise ValueError(f"unknown policy {policy.name!r}; known: {', '.join(ALGORITHMS)}")
    return _fifo(snapshot, policy, now)


def _submit_order(job: PendingJob) -> tuple[float, int]:
    """First come, first served; the id breaks ties so the order is total."""
    return (job.submitted_at, job.job_id)


def _fifo(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
    # 1. Free capacity and the queue in submit order.
    index = FreeIndex(snapshot.free_by_node())
    models = snapshot.gpu_model_of()
    queue = sorted(snapshot.pending, key=_submit_order)
    reservation: Reservation | None = None
    started: list[tuple[PendingJob, Start]] = []
    # Free capacity only shrinks within a call: a shape that found no room finds none later.
    no_room: set[tuple[object, ...]] = set()
    for job in queue:
        # 2. Before the first blocked job, start everything that fits.
        if reservation is None:
            placement = index.place(job, models) if index.could_fit(job) else None
            if placement is not None:
                index.take(placement)
                started.append((job, Start(job.job_id, placement)))
                continue
            if not policy.backfill:
                break
            # 3. The head of the line is blocked: reserve its earliest start. A job that
            #    cannot start even on an empty facility (nodes drained) reserves nothing and
            #    must not lift the protection of the next blocked job: look on.
            reservation = reserve(job, snapshot, started, now, free_now=index.free)
            if math.isinf(reservation.start_at):
                reservation = None
            no_room.clear()
            continue
        # 4. Backfill: fit now and never delay the reservation.
        ends_in_time = now + job.time_limit_s <= reservation.start_at
        shape = (job.per_node, job.nodes, job.gpu_model, ends_in_time)
        if shape in no_room or not index.could_fit(job):
            continue
        excluded = frozenset() if ends_in_time else reservation.nodes
        placement = index.place(job, models, excluded)
        if placement is None:
            no_room.add(shape)
            continue
        index.take(placement)
        started.append((job, Start(job.job_id, placement)))
    return [start for _, start in started]
