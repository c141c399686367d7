"""A plan of the nodes over time, for backfill that reserves room for jobs that must wait.

It knows, per node, what is free now, when each running job should release its part (by the
caller's `end_of`: the user limit for Slurm, a learned estimate for fair-share) and which
future windows are reserved: by the policy, or by maintenance (always hard: a job may run up to
a maintenance window only if its time limit ends before it). `earliest(job, duration)` finds
the first moment `job.nodes` nodes each have the job's per-node resources free for `duration`
seconds, outside every reservation; `start` and `reserve` update the plan as the policy
decides. Reservations hold
whole nodes, as Slurm's backfill does ("even if jobs don't require whole nodes"). A *hard*
reservation is one a job may precede only if it ends by its time limit (`limit`), not merely
by its estimate, before the reservation begins.

For speed, each job shape gets a table of nodes sorted by the earliest moment the shape fits
there outside any reservation, however short the job (`opens`), then by how little room is
left (best fit); a single-node search walks it and stops as soon as no later node can do
better, as a job can never start on a node before it opens.

With network blocks (scheduler.topology) a gang's nodes are chosen by block among those clear
at a moment; one that must stay in one block is searched block by block; a lone job goes to
the block with the fewest idle nodes among equally good ones.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from aifactory.domain.resources import Resources
from aifactory.scheduler import maintenance, topology
from aifactory.scheduler.placement import FreeIndex, can_host
from aifactory.scheduler.snapshot import PendingJob, RunningJob, Snapshot

Shape = tuple[Resources, str | None, frozenset[str] | None]  # per node; GPU model; countries
Entry = tuple[float, int, int, int, str]  # opens, free GPUs/CPUs/MB now (best fit), node id
INSTANT = (1e-6, 1e-6)  # the span of the shortest job, to find when a node opens
SOON_S = 1.0  # a job past its expected end still holds its room: assume it ends this soon


@dataclass(frozen=True, slots=True)
class Slot:
    start_at: float
    nodes: tuple[str, ...]


class NodePlan:
    def __init__(
        self, snapshot: Snapshot, now: float, end_of: Callable[[RunningJob], float]
    ) -> None:
        self.now = now
        self.free = snapshot.free_by_node()
        self.index = FreeIndex(self.free)  # shares `free`: a quick "any room now?"
        self.kinds = snapshot.kinds()
        self.topology = any(kind.block is not None for kind in self.kinds.values())
        self.capacity = {n.id: n.capacity for n in snapshot.nodes if n.id in self.free}
        # Idle nodes (nothing running) per block: a lone job goes where fewest are, so idle
        # nodes gather in few blocks, where gangs find them together.
        self.idle: Counter[str | None] = Counter(
            self.kinds[n].block for n in self.free if self.topology and self._is_idle(n)
        )
        # Only nodes where something runs have releases (most of a big idle facility has none).
        self.releases: dict[str, list[tuple[float, Resources]]] = {}
        for job in snapshot.running:
            end = max(end_of(job), now + SOON_S)
            for node_id, part in job.placement.items():
                if node_id in self.free:
                    self.releases.setdefault(node_id, []).append((end, part))
        for timeline in self.releases.values():
            if len(timeline) > 1:
                timeline.sort(key=lambda release: release[0])
        self.blocks: dict[str, list[tuple[float, float, bool]]] = {}
        self.block_ends: dict[str, list[float]] = {}
        # The policy's own reservations (`reserve`), apart from maintenance, which the plan
        # holds from the start.
        self.reserved: list[tuple[str, float, float, bool]] = []
        self.windows = maintenance.by_node(snapshot.maintenance, self.free)
        for node_id, spans in self.windows.items():
            for begin, end in spans:
                self._block(node_id, begin, end, hard=True)
        self._tables: dict[Shape, list[Entry]] = {}
        self._entries: dict[Shape, dict[str, Entry]] = {}
        self._fits: dict[Shape, dict[str, float]] = {}

    # ---- queries ---------------------------------------------------------------------------
    def earliest(
        self,
        job: PendingJob,
        duration: float,
        limit: float | None = None,
        *,
        one_block: bool | None = None,
        patience: float = 0.0,
    ) -> Slot | None:
        """The first slot for `job`; None if it can never fit (too big, no such nodes).

        `one_block`: whether it must be inside one block (None: as the job asks). A gang
        that only prefers one block takes the first slot inside one if it begins within
        `patience` seconds of the first slot across blocks (like Slurm's `--switches=1@time`).
        """
        slot = self._earliest(job, duration, limit, one_block)
        if patience <= 0 or slot is None or one_block is not None or not self._scattered(slot):
            return slot
        inside = self._earliest(job, duration, limit, True)
        if inside is not None and inside.start_at <= slot.start_at + patience:
            return inside
        return slot

    def _scattered(self, slot: Slot) -> bool:
        return self.topology and topology.blocks_spanned(slot.nodes, self.kinds) > 1

    def _earliest(
        self, job: PendingJob, duration: float, limit: float | None, one_block: bool | None
    ) -> Slot | None:
        table = self._table(job)
        if len(table) < job.nodes:
            return None
        span = (duration, duration if limit is None else limit)
        if job.nodes == 1:
            return self._earliest_single(table, span)
        if (job.one_block if one_block is None else one_block) and self.topology:
            return self._earliest_in_one_block(table, job.nodes, span)
        return self._earliest_gang(table, job.nodes, span)

    def _earliest_in_one_block(
        self, table: list[Entry], count: int, span: tuple[float, float]
    ) -> Slot | None:
        """The first moment some block has `count` nodes clear: each block's own first (a
        search over its nodes alone, not every node's moments), then the choice among the
        blocks clear at the earliest of them."""
        blocks: dict[str | None, list[Entry]] = defaultdict(list)
        for entry in table:
            blocks[self.kinds[entry[4]].block].append(entry)
        first = math.inf
        for entries in blocks.values():
            if len(entries) >= count:
                slot = self._earliest_gang(entries, count, span)
                if slot is not None:
                    first = min(first, slot.start_at)
        if math.isinf(first):
            return None  # no block has that many nodes that could take it
        return self._gang_at(table, count, span, first, one_block=True)

    def _earliest_single(self, table: list[Entry], span: tuple[float, float]) -> Slot | None:
        best, best_node = math.inf, ""
        for position, entry in enumerate(table):
            if entry[0] >= best:
                break
            start = self._clear_of_blocks(entry[4], entry[0], span)
            if start < best:
                best, best_node = start, entry[4]
                if start <= self.now:
                    if self.topology:
                        best_node = self._in_busiest_block(table, position, span)
                    break
        return Slot(best, (best_node,)) if math.isfinite(best) else None

    def _in_busiest_block(self, table: list[Entry], first: int, span: tuple[float, float]) -> str:
        """Of the nodes as good as `table[first]` (free now, as much room), the one in the
        block with the fewest idle nodes; the first such in the table on a tie."""
        opens, gpus = table[first][0], table[first][1]
        best, best_idle = table[first][4], self.idle[self.kinds[table[first][4]].block]
        for entry in table[first + 1 :]:
            if entry[0] != opens or entry[1] != gpus or best_idle == 0:
                break
            idle = self.idle[self.kinds[entry[4]].block]
            if idle < best_idle and self._clear_of_blocks(entry[4], self.now, span) <= self.now:
                best, best_idle = entry[4], idle
        return best

    def _earliest_gang(
        self, table: list[Entry], count: int, span: tuple[float, float]
    ) -> Slot | None:
        # No gang starts before `count` nodes could each start it on their own: try that
        # moment first (found without looking at nodes that open later), then every later one.
        lower = self._kth_start(table, count, span)
        if math.isinf(lower):
            return None
        slot = self._gang_at(table, count, span, lower, one_block=False)
        if slot is not None:
            return slot
        # Candidate starts: each node's first clear moment, and each moment a node comes clear
        # again after one of its reservations or windows (a gang may fit only then).
        each = set()
        for entry in table:
            each.add(self._clear_of_blocks(entry[4], entry[0], span))
            for end in self.block_ends.get(entry[4], ()):
                if end > lower and end >= entry[0]:
                    each.add(self._clear_of_blocks(entry[4], end, span))
        for at in sorted(t for t in each if t > lower):
            if math.isinf(at):
                break
            slot = self._gang_at(table, count, span, at, one_block=False)
            if slot is not None:
                return slot
        return None

    def _kth_start(self, table: list[Entry], count: int, span: tuple[float, float]) -> float:
        smallest: list[float] = []  # the `count` earliest single-node starts, negated (heap)
        for entry in table:
            if len(smallest) == count and entry[0] >= -smallest[0]:
                break
            start = self._clear_of_blocks(entry[4], entry[0], span)
            if len(smallest) < count:
                heapq.heappush(smallest, -start)
            elif start < -smallest[0]:
                heapq.heapreplace(smallest, -start)
        return -smallest[0] if len(smallest) == count else math.inf

    def _gang_at(
        self,
        table: list[Entry],
        count: int,
        span: tuple[float, float],
        at: float,
        *,
        one_block: bool,
    ) -> Slot | None:
        """`count` nodes clear at `at`: the first in the table, or by block (topology)."""
        clear: list[str] = []
        for entry in table:
            if entry[0] > at:
                break  # the table is sorted by when nodes open
            if self._clear_of_blocks(entry[4], at, span) == at:
                clear.append(entry[4])
                if len(clear) == count and not self.topology:
                    return Slot(at, tuple(clear))
        chosen = topology.choose(clear, count, self.kinds, one_block=one_block)
        return None if chosen is None else Slot(at, tuple(chosen))

    def _clear_of_blocks(self, node_id: str, at: float, span: tuple[float, float]) -> float:
        """The first moment from `at` when the node has no reservation for the job's span
        (its estimate before soft reservations, its limit before hard ones)."""
        blocks = self.blocks.get(node_id)
        if not blocks:
            return at
        # A node's reservations never overlap, so they are sorted by end as well as by start:
        # skip those over before `at`, stop at the first that begins after the longest span.
        longest = max(span)
        for begin, end, hard in blocks[bisect.bisect_right(self.block_ends[node_id], at) :]:
            if at + span[hard] > begin:
                at = end
            elif at + longest <= begin:
                break
        return at

    def room_now(self, job: PendingJob) -> bool:
        """A quick necessary test for starting now: enough nodes with the GPUs free."""
        return self.index.could_fit(job)

    def any_open(self, gpus: int, duration: float) -> bool:
        """Could any job asking at least `gpus` GPUs per node for at least `duration` start
        somewhere now? (False lets a policy stop looking.)"""
        span = (duration, duration)
        for free_gpus, node_ids in self.index.buckets.items():
            if free_gpus < gpus:
                continue
            for node_id in node_ids:
                if gpus == 0 and self.free[node_id].cpus <= 0:
                    continue
                if self._clear_of_blocks(node_id, self.now, span) <= self.now:
                    return True
        return False

    # ---- changes ---------------------------------------------------------------------------
    def start(self, job: PendingJob, nodes: tuple[str, ...], duration: float) -> None:
        end = self.now + max(duration, SOON_S)
        if self.topology:
            for node_id in nodes:
                self.idle[self.kinds[node_id].block] -= self._is_idle(node_id)
        self.index.take({node_id: job.per_node for node_id in nodes})
        for node_id in nodes:
            timeline = self.releases.setdefault(node_id, [])
            bisect.insort(timeline, (end, job.per_node), key=lambda r: r[0])
            self._refresh(node_id, room_changed=True)

    def reserve(
        self, nodes: tuple[str, ...], begin: float, end: float, *, hard: bool = False
    ) -> None:
        for node_id in nodes:
            self.reserved.append((node_id, begin, end, hard))
            self._block(node_id, begin, end, hard=hard)
            self._refresh(node_id, room_changed=False)

    def _block(self, node_id: str, begin: float, end: float, *, hard: bool) -> None:
        bisect.insort(self.blocks.setdefault(node_id, []), (begin, end, hard))
        bisect.insort(self.block_ends.setdefault(node_id, []), end)

    def _is_idle(self, node_id: str) -> bool:
        return self.free[node_id] == self.capacity[node_id]

    def next_window(self, node_id: str) -> float:
        """When the node's next maintenance begins (∞: none planned); now if one is on."""
        spans = self.windows.get(node_id)
        return maintenance.next_begin(spans, self.now) if spans else float("inf")

    # ---- the per-shape tables --------------------------------------------------------------
    def _table(self, job: PendingJob) -> list[Entry]:
        model = job.gpu_model if job.per_node.gpus else None
        shape = (job.per_node, model, job.countries)
        table = self._tables.get(shape)
        if table is None:
            fits, entries = self._shape(job)
            table = sorted(entries.values())
            self._tables[shape], self._entries[shape], self._fits[shape] = table, entries, fits
        return table

    def _shape(self, job: PendingJob) -> tuple[dict[str, float], dict[str, Entry]]:
        """When the job's shape first fits on each node that can host it, and its entry: one
        pass, inlined for the common node (room now, no reservation) — at 6,000 nodes this
        table is most of a round's cost."""
        need, now, free, blocks = job.per_node, self.now, self.free, self.blocks
        gpus, cpus, memory = need.gpus, need.cpus, need.memory_mb
        anywhere = (job.gpu_model is None or gpus == 0) and job.countries is None
        fits: dict[str, float] = {}
        entries: dict[str, Entry] = {}
        for node_id, cap in self.capacity.items():
            if gpus > cap.gpus or cpus > cap.cpus or memory > cap.memory_mb:
                continue
            if not anywhere and not can_host(job, self.kinds[node_id]):
                continue
            room = free[node_id]
            if gpus <= room.gpus and cpus <= room.cpus and memory <= room.memory_mb:
                at = now
            else:
                at = self._fits_at(node_id, need)
            fits[node_id] = at
            opens = self._clear_of_blocks(node_id, at, INSTANT) if node_id in blocks else at
            entries[node_id] = (opens, room.gpus, room.cpus, room.memory_mb, node_id)
        return fits, entries

    def _fits_at(self, node_id: str, need: Resources) -> float:
        """When `need` first fits on the node, reservations aside (∞: never)."""
        grown = self.free[node_id]
        if need <= grown:
            return self.now
        for at, part in self.releases.get(node_id, ()):
            grown = grown + part
            if need <= grown:
                return at
        return math.inf

    def _entry(self, node_id: str, fits_at: float) -> Entry:
        room = self.free[node_id]
        opens = self._clear_of_blocks(node_id, fits_at, INSTANT)
        return (opens, room.gpus, room.cpus, room.memory_mb, node_id)

    def _refresh(self, node_id: str, *, room_changed: bool) -> None:
        for shape, entries in self._entries.items():
            old = entries.get(node_id)
            if old is None:
                continue
            fits = self._fits[shape]
            if room_changed:
                fits[node_id] = self._fits_at(node_id, shape[0])
            new = self._entry(node_id, fits[node_id])
            if new == old:
                continue
            table = self._tables[shape]
            del table[bisect.bisect_left(table, old)]
            entries[node_id] = new
            bisect.insort(table, new)


def least_asks(asks: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """For each position of a queue of (GPUs per node, duration) asks, the fewest GPUs and the
    shortest duration from there on: what the most modest later job could need."""
    out: list[tuple[int, float]] = []
    gpus, duration = 1 << 30, math.inf
    for job_gpus, job_duration in reversed(asks):
        if job_gpus < gpus:
            gpus = job_gpus
        if job_duration < duration:
            duration = job_duration
        out.append((gpus, duration))
    out.reverse()
    return out
