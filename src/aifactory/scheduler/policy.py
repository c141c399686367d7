"""Policies and the one entry point, `schedule`.

`fifo` is first-come-first-served; with `backfill` (the `easy` policy) the first job that does
not fit gets a reservation at the earliest time enough running jobs will have ended (by their
limits) and a later job may jump ahead only if it cannot delay that reservation. `slurm` is the
baseline of scheduler/slurm.py, `fairshare` (the default) ours in scheduler/fairshare.py, and
`oracle` (scheduler/oracle.py) the simulator-only bound that knows true runtimes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aifactory.scheduler import maintenance
from aifactory.scheduler.backfill import Reservation, reserve
from aifactory.scheduler.decisions import Decision, Start
from aifactory.scheduler.fairshare import FairshareKnobs, order, schedule_fairshare
from aifactory.scheduler.placement import FreeIndex
from aifactory.scheduler.slurm import SlurmKnobs, by_priority, schedule_slurm
from aifactory.scheduler.snapshot import PendingJob, Snapshot
from aifactory.scheduler.usage import WEEK_S


@dataclass(frozen=True, slots=True)
class Policy:
    name: str = "fairshare"
    backfill: bool = True
    half_life_s: float = WEEK_S  # how fast past usage fades (callers decay usage with it)
    slurm: SlurmKnobs = field(default_factory=SlurmKnobs)
    fairshare: FairshareKnobs = field(default_factory=FairshareKnobs)


# The policies a facility (and the simulator) can be configured with, by the one name used in
# settings, CLI, API and reports.
NAMED: dict[str, Policy] = {
    "fifo": Policy(name="fifo", backfill=False),  # submit order, head-of-line blocking
    "easy": Policy(name="fifo", backfill=True),  # FIFO with EASY backfill on user time limits
    "slurm": Policy(name="slurm"),
    "fairshare": Policy(name="fairshare"),
}
# Never on a live facility: it needs the true runtimes only the simulator has.
SIM_ONLY: dict[str, Policy] = {"oracle": Policy(name="oracle")}
DEFAULT = "fairshare"


def policy_named(name: str) -> Policy:
    if name in SIM_ONLY:
        raise ValueError(f"policy {name!r} knows true runtimes: it exists only in the simulator")
    try:
        return NAMED[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(NAMED)}") from None


ALGORITHMS = ("fifo", "slurm", "fairshare", "oracle")  # what `Policy.name` selects


def schedule(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
    if policy.name == "fifo":
        return _fifo(snapshot, policy, now)
    if policy.name == "slurm":
        return schedule_slurm(snapshot, policy.slurm, now, backfill=policy.backfill)
    if policy.name in ("fairshare", "oracle"):
        return schedule_fairshare(snapshot, policy.fairshare, now, oracle=policy.name == "oracle")
    raise ValueError(f"unknown policy {policy.name!r}; known: {', '.join(ALGORITHMS)}")


def queue_order(snapshot: Snapshot, policy: Policy, now: float) -> list[PendingJob]:
    """The pending jobs in the order `policy` considers them (for explanations)."""
    if policy.name == "slurm":
        return by_priority(snapshot, policy.slurm, now)
    if policy.name in ("fairshare", "oracle"):
        oracle = policy.name == "oracle"
        return [job for job, _, _ in order(snapshot, policy.fairshare, now, oracle=oracle)]
    return sorted(snapshot.pending, key=_submit_order)


def _submit_order(job: PendingJob) -> tuple[float, int]:
    """First come, first served; the id breaks ties so the order is total."""
    return (job.submitted_at, job.job_id)


def _fifo(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
    # 1. Free capacity and the queue in submit order.
    index = FreeIndex(snapshot.free_by_node())
    models = snapshot.kinds()
    queue = sorted(snapshot.pending, key=_submit_order)
    reservation: Reservation | None = None
    started: list[tuple[PendingJob, Start]] = []
    # Free capacity only shrinks within a call: a shape that found no room finds none later.
    no_room: set[tuple[object, ...]] = set()
    windows = snapshot.maintenance
    for job in queue:
        barred = maintenance.barred(windows, now, job.time_limit_s)
        # 2. Before the first blocked job, start everything that fits.
        if reservation is None:
            placement = index.place(job, models, barred) if index.could_fit(job) else None
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
        # Everything placement looks at: where its data may go, whether it needs one block.
        shape = (
            job.per_node,
            job.nodes,
            job.gpu_model,
            job.countries,
            job.one_block,
            ends_in_time,
            barred,
        )
        if shape in no_room or not index.could_fit(job):
            continue
        excluded = barred if ends_in_time else barred | reservation.nodes
        placement = index.place(job, models, excluded)
        if placement is None:
            no_room.add(shape)
            continue
        index.take(placement)
        started.append((job, Start(job.job_id, placement)))
    return [start for _, start in started]
