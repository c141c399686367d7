"""Where a job goes: `nodes` distinct nodes that each have its per-node resources free.

Best fit: among the nodes that can take the job, the ones with the fewest free GPUs first (then
fewest CPUs, then id), so big holes stay whole for big jobs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from aifactory.domain.resources import Resources
from aifactory.scheduler.snapshot import PendingJob


def place(
    job: PendingJob,
    free: Mapping[str, Resources],
    gpu_models: Mapping[str, str | None],
    excluded: frozenset[str] = frozenset(),
) -> dict[str, Resources] | None:
    candidates = [
        node_id
        for node_id, room in free.items()
        if node_id not in excluded and job.per_node <= room and _model_ok(job, gpu_models[node_id])
    ]
    if len(candidates) < job.nodes:
        return None
    candidates.sort(key=lambda n: (free[n].gpus, free[n].cpus, free[n].memory_mb, n))
    return {node_id: job.per_node for node_id in candidates[: job.nodes]}


def _model_ok(job: PendingJob, node_model: str | None) -> bool:
    return job.gpu_model is None or job.per_node.gpus == 0 or job.gpu_model == node_model


def take(free: dict[str, Resources], placement: Mapping[str, Resources]) -> None:
    for node_id, used in placement.items():
        free[node_id] = free[node_id] - used


class FreeIndex:
    """Free resources per node, plus a histogram of free GPU counts, so the necessary test
    "are there `nodes` nodes with enough free GPUs?" costs O(distinct counts), not O(nodes).
    The scheduler asks it before every full placement search; most waiting jobs fail it."""

    def __init__(self, free: dict[str, Resources]) -> None:
        self.free = free
        self.gpu_counts: Counter[int] = Counter(room.gpus for room in free.values())

    def could_fit(self, job: PendingJob) -> bool:
        need = job.per_node.gpus
        hosts = sum(count for gpus, count in self.gpu_counts.items() if gpus >= need)
        return hosts >= job.nodes

    def take(self, placement: Mapping[str, Resources]) -> None:
        for node_id, used in placement.items():
            self._set(node_id, self.free[node_id] - used)

    def give(self, placement: Mapping[str, Resources]) -> None:
        for node_id, used in placement.items():
            self._set(node_id, self.free[node_id] + used)

    def _set(self, node_id: str, room: Resources) -> None:
        self.gpu_counts[self.free[node_id].gpus] -= 1
        self.free[node_id] = room
        self.gpu_counts[room.gpus] += 1
