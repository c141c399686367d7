"""Where a job goes: `nodes` distinct nodes that each have its per-node resources free.

Best fit: among the nodes that can take the job, the ones with the fewest free GPUs first (then
fewest CPUs, then id), so big holes stay whole for big jobs.
"""

from __future__ import annotations

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
