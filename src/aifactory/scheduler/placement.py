"""Where a job goes: `nodes` distinct nodes that each have its per-node resources free.

Best fit: among the nodes that can take the job, the ones with the fewest free GPUs first (then
fewest CPUs, then id), so big holes stay whole for big jobs. A gang's nodes are then chosen
by network block (scheduler.topology): one block if any holds it, else as few as can.

`place` states the rule plainly (a scan of every node); `FreeIndex.place` finds the same
placement from free-GPU buckets and is what the policies call. Property tests hold the two
equal, with `place` as the reference.
"""

from __future__ import annotations

from collections.abc import Mapping

from aifactory.domain.resources import Resources
from aifactory.scheduler import topology
from aifactory.scheduler.snapshot import NodeKind, PendingJob


def place(
    job: PendingJob,
    free: Mapping[str, Resources],
    kinds: Mapping[str, NodeKind],
    excluded: frozenset[str] = frozenset(),
) -> dict[str, Resources] | None:
    candidates = [
        node_id
        for node_id, room in free.items()
        if node_id not in excluded and job.per_node <= room and can_host(job, kinds[node_id])
    ]
    candidates.sort(key=lambda n: (free[n].gpus, free[n].cpus, free[n].memory_mb, n))
    chosen = topology.choose(candidates, job.nodes, kinds, one_block=job.one_block)
    return None if chosen is None else {node_id: job.per_node for node_id in chosen}


def can_host(job: PendingJob, kind: NodeKind) -> bool:
    """The node has the GPU model the job asks for, in a country its data may be in."""
    model_ok = job.gpu_model is None or job.per_node.gpus == 0 or job.gpu_model == kind.gpu_model
    return model_ok and (job.countries is None or kind.country in job.countries)


def take(free: dict[str, Resources], placement: Mapping[str, Resources]) -> None:
    for node_id, used in placement.items():
        free[node_id] = free[node_id] - used


class FreeIndex:
    """Free resources per node, with the nodes bucketed by their free GPU count.

    `could_fit` answers the necessary test "are there `nodes` nodes with enough free GPUs?" in
    O(distinct counts); `place` finds the same best fit as `place()` above by walking the
    buckets upwards from the job's need instead of sorting every node.
    """

    def __init__(self, free: dict[str, Resources]) -> None:
        self.free = free
        self.buckets: dict[int, set[str]] = {}
        for node_id, room in free.items():
            self.buckets.setdefault(room.gpus, set()).add(node_id)

    def could_fit(self, job: PendingJob) -> bool:
        need = job.per_node.gpus
        hosts = sum(len(ids) for gpus, ids in self.buckets.items() if gpus >= need)
        return hosts >= job.nodes

    def place(
        self,
        job: PendingJob,
        kinds: Mapping[str, NodeKind],
        excluded: frozenset[str] = frozenset(),
    ) -> dict[str, Resources] | None:
        chosen = self._best(job, kinds, excluded, job.nodes)
        if len(chosen) < job.nodes:
            return None
        if job.nodes > 1 and any(kind.block is not None for kind in kinds.values()):
            every = self._best(job, kinds, excluded, len(self.free))
            found = topology.choose(every, job.nodes, kinds, one_block=job.one_block)
            if found is None:
                return None
            chosen = found
        return {node_id: job.per_node for node_id in chosen}

    def _best(
        self, job: PendingJob, kinds: Mapping[str, NodeKind], excluded: frozenset[str], most: int
    ) -> list[str]:
        """Up to `most` nodes that can take the job, best fit first."""
        chosen: list[str] = []
        for gpus in sorted(g for g in self.buckets if g >= job.per_node.gpus):
            fitting = [
                n
                for n in self.buckets[gpus]
                if n not in excluded and job.per_node <= self.free[n] and can_host(job, kinds[n])
            ]
            if not fitting:
                continue
            wanted = most - len(chosen)
            if wanted == 1:  # the common case: the best node, without sorting them all
                chosen.append(min(fitting, key=self._tie_break))
            else:
                chosen.extend(sorted(fitting, key=self._tie_break)[:wanted])
            if len(chosen) == most:
                break
        return chosen

    def _tie_break(self, node_id: str) -> tuple[int, int, str]:
        room = self.free[node_id]
        return (room.cpus, room.memory_mb, node_id)

    def take(self, placement: Mapping[str, Resources]) -> None:
        for node_id, used in placement.items():
            self._set(node_id, self.free[node_id] - used)

    def give(self, placement: Mapping[str, Resources]) -> None:
        for node_id, used in placement.items():
            self._set(node_id, self.free[node_id] + used)

    def _set(self, node_id: str, room: Resources) -> None:
        before = self.free[node_id].gpus
        self.buckets[before].discard(node_id)
        if not self.buckets[before]:
            del self.buckets[before]
        self.free[node_id] = room
        self.buckets.setdefault(room.gpus, set()).add(node_id)
