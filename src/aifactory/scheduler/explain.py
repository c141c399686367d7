"""Why a pending job is not running, and when it may start. Pure, like `schedule`.

The queue is taken in the order the facility's policy considers it. The estimate plans that
queue without backfill: each job starts at the earliest moment, no earlier than the job ahead of
it, when enough nodes have room, with running and planned jobs ending when the policy expects
them to (by learned runtime estimates under fair-share, by user time limits otherwise). Jobs
often end sooner and backfill starts small jobs early, so the estimate is usually cautious;
but a later arrival can also be ordered ahead, so it is an estimate, never a promise. Only the
first `PLANNED` jobs of the queue get one. Maintenance windows count: a job starts on a node
only if its time limit ends before the node's next window, so a window can push an estimate
past its end, and the reason names the window.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aifactory.domain.resources import Resources
from aifactory.scheduler import maintenance, shortfall
from aifactory.scheduler.estimates import expected_end
from aifactory.scheduler.fairshare import overuse_penalty
from aifactory.scheduler.placement import FreeIndex, can_host
from aifactory.scheduler.policy import Policy, queue_order
from aifactory.scheduler.snapshot import NodeKind, NodeView, PendingJob, Snapshot

PLANNED = 500


@dataclass(frozen=True, slots=True)
class Explanation:
    job_id: int
    position: int | None  # 1 = next in line; None: held, out of the line until released
    reason: str
    estimated_start: float | None  # None: not planned (beyond PLANNED, or can never start)
    held: bool = False  # HELD: the reason says what releases it


def explain(
    snapshot: Snapshot, now: float, policy: Policy | None = None, *, after_round: bool = False
) -> dict[int, Explanation]:
    """`after_round`: the snapshot already holds this round's starts, so a job that fits the
    free room was kept waiting by the policy on purpose (for the jobs ahead of it)."""
    policy = policy if policy is not None else Policy()
    queue = queue_order(snapshot, policy, now)
    models = snapshot.kinds()
    free_now = FreeIndex(snapshot.free_by_node())
    capacity = FreeIndex({n.id: n.capacity for n in snapshot.nodes if n.schedulable})
    possible = [job for job in queue[:PLANNED] if capacity.place(job, models) is not None]
    learned = policy.name in ("fairshare", "oracle")
    starts = _plan(snapshot, possible, models, now, learned)
    notes = _fairness_notes(snapshot, policy, now) if learned else {}
    out = {}
    for position, job in enumerate(queue, start=1):
        reason = _windowed(job, snapshot.maintenance, now, free_now, models) or _reason(
            job, position, free_now, capacity, snapshot.nodes, models, policy.name, after_round
        )
        reason += notes.get(job.job_id, "")
        out[job.job_id] = Explanation(job.job_id, position, reason, starts.get(job.job_id))
    return out


def _reason(
    job: PendingJob,
    position: int,
    free_now: FreeIndex,
    capacity: FreeIndex,
    nodes: Sequence[NodeView],
    models: Mapping[str, NodeKind],
    policy: str,
    after_round: bool,
) -> str:
    """Named by shortfall: what is short, on the nodes the job may use at all."""
    if capacity.place(job, models) is None:
        return (
            _no_block_now(job, nodes, models)
            or shortfall.out_of_service(job, nodes, models)
            or shortfall.never(job, capacity.free, models)
        )
    if free_now.place(job, models) is not None and after_round:
        return (
            f"fits the free room, but the {policy} policy keeps it for the "
            f"{position - 1} job(s) ahead in line: starting this one now would delay them"
        )
    if free_now.place(job, models) is not None:
        return "fits now: starts at the next scheduling round unless an earlier job takes it"
    ahead = f"; {position - 1} job(s) ahead in the queue" if position > 1 else ""
    if _spread_fits(job, free_now, models):
        most = _most_in_one_block(job, free_now.free, models)
        return (
            f"waiting for {job.nodes} nodes with room inside one network block (it asked for "
            f"one block); at most {most} have room in any one block now" + ahead
        )
    return shortfall.waiting(job, free_now.free, capacity.free, models) + ahead


def _spread_fits(job: PendingJob, room: FreeIndex, models: Mapping[str, NodeKind]) -> bool:
    """It would fit `room` if it did not require one block."""
    return job.one_block and room.place(replace(job, one_block=False), models) is not None


def _no_block_now(
    job: PendingJob, nodes: Sequence[NodeView], models: Mapping[str, NodeKind]
) -> str | None:
    """Why a gang that must run inside one block cannot start even on an empty facility,
    when enough nodes could hold it spread: a block waits for nodes out of service (the
    block that needs the fewest back; submission counted every node), or none is that
    large. None: not such a gang, or too big even spread (the shortfall says why)."""
    if not job.one_block or job.nodes < 2 or all(n.block is None for n in nodes):
        return None
    blocks: dict[str | None, list[NodeView]] = {}
    for node in nodes:
        if _could_host(job, node, models):
            blocks.setdefault(node.block, []).append(node)
    if sum(map(len, blocks.values())) < job.nodes:
        return None
    for group in sorted(blocks.values(), key=lambda group: -sum(n.schedulable for n in group)):
        why = shortfall.out_of_service(job, group, models)
        if why is not None:
            block = group[0].block
            where = f"block {block}" if block is not None else "the nodes without a block"
            return f"{why} (it must run inside one network block: {where})"
    most = max(map(len, blocks.values()))
    return (
        f"can never start here: it must run inside one network block, and no block has "
        f"{job.nodes} nodes of its shape (the largest has {most})"
    )


def _could_host(job: PendingJob, node: NodeView, models: Mapping[str, NodeKind]) -> bool:
    return job.per_node <= node.capacity and can_host(job, models[node.id])


def _most_in_one_block(
    job: PendingJob, room: Mapping[str, Resources], models: Mapping[str, NodeKind]
) -> int:
    per_block = Counter(
        models[node_id].block
        for node_id, free in room.items()
        if job.per_node <= free and can_host(job, models[node_id])
    )
    return max(per_block.values(), default=0)


def _windowed(
    job: PendingJob,
    windows: Sequence[maintenance.Window],
    now: float,
    free_now: FreeIndex,
    models: Mapping[str, NodeKind],
) -> str | None:
    """Why a job that fits the free room waits for maintenance; None when none is the cause."""
    barred = maintenance.barred(windows, now, job.time_limit_s)
    if not barred or free_now.place(job, models) is None:
        return None
    if free_now.place(job, models, barred) is not None:
        return None
    # The window to name: one on a node that has room for the job now.
    with_room = {
        node_id
        for node_id, room in free_now.free.items()
        if job.per_node <= room and can_host(job, models[node_id])
    }
    window = min(
        (w for w in windows if w.clashes(now, job.time_limit_s) and w.nodes & with_room),
        key=lambda w: (w.begins_at, w.window_id),
    )
    about = f" ({window.reason})" if window.reason else ""
    if window.active(now):
        when = f"its nodes are in maintenance until {_moment(window.ends_at)}{about}"
    else:
        when = (
            f"maintenance begins at {_moment(window.begins_at)} on the nodes with room{about}, "
            f"and its time limit of {_hours(job.time_limit_s)} would run into it"
        )
    return f"{when}: it starts after {_moment(window.ends_at)}, or sooner where room frees up"


def _moment(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if math.isfinite(seconds) else "none"


def _fairness_notes(snapshot: Snapshot, policy: Policy, now: float) -> dict[int, str]:
    """What fair-share adds: the starvation guard, quotas and over-use of a fair share."""
    knobs = policy.fairshare
    penalty = overuse_penalty(snapshot, knobs.fairness_weight)
    notes = {}
    for job in snapshot.pending:
        project = snapshot.project(job.project)
        if now - job.submitted_at >= knobs.starvation_after_s:
            notes[job.job_id] = "; waited past the starvation guard: goes first"
        elif project.quota_gpus and job.gpus <= project.quota_gpus:
            notes[job.job_id] = (
                f"; project {job.project} is guaranteed {project.quota_gpus} GPU(s): "
                "borrowed GPUs are reclaimed for it"
            )
        elif penalty.get(job.project, 1.0) > 1.0:
            notes[job.job_id] = (
                f"; project {job.project} is over its fair share of recent GPU use, "
                "so its jobs queue behind those of lighter users"
            )
    return notes


def _plan(
    snapshot: Snapshot,
    queue: list[PendingJob],
    models: Mapping[str, NodeKind],
    now: float,
    learned: bool,
) -> dict[int, float]:
    runtimes = snapshot.runtimes if learned else None
    index = FreeIndex(snapshot.free_by_node())
    releases: list[tuple[float, int, dict[str, Resources]]] = [
        (max(now, expected_end(r, now, runtimes)), r.job_id, dict(r.placement))
        for r in snapshot.running
    ]
    heapq.heapify(releases)
    windows = snapshot.maintenance
    window_ends = maintenance.ends_after(windows, now)
    clock, starts = now, {}
    for job in queue:
        placement = index.place(job, models, maintenance.barred(windows, clock, job.time_limit_s))
        while placement is None:
            upcoming = [releases[0][0]] if releases else []
            upcoming += [end for end in window_ends if end > clock][:1]
            if not upcoming:
                break
            clock = max(clock, min(upcoming))
            while releases and releases[0][0] <= clock:
                _, _, freed = heapq.heappop(releases)
                index.give({n: r for n, r in freed.items() if n in index.free})
            barred = maintenance.barred(windows, clock, job.time_limit_s)
            placement = index.place(job, models, barred)
        if placement is None:  # never room outside maintenance, even on an empty facility
            continue
        starts[job.job_id] = clock
        index.take(placement)
        runtime = job.time_limit_s if runtimes is None else runtimes.runtime(job)
        if math.isfinite(runtime):
            heapq.heappush(releases, (clock + runtime, job.job_id, placement))
    return starts
