"""Turn a scheduler placement (resources per node) into named devices: GPU ids and CPU slots.

The scheduler counts; this picks which ones, avoiding the devices active jobs hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aifactory.domain.placement import NodeShare, Placement
from aifactory.domain.resources import Resources


class DeviceBook:
    """Which GPU ids and CPU slots are taken on each node, from the active jobs' placements."""

    def __init__(
        self,
        node_gpu_ids: Mapping[str, list[str]],
        node_cpus: Mapping[str, int],
        active_placements: Iterable[Placement],
    ) -> None:
        self.node_gpu_ids = node_gpu_ids
        self.node_cpus = node_cpus
        self.gpus_taken: dict[str, set[str]] = {n: set() for n in node_gpu_ids}
        self.cpus_taken: dict[str, set[int]] = {n: set() for n in node_gpu_ids}
        for placement in active_placements:
            self._mark(placement)

    def _mark(self, placement: Placement) -> None:
        for node_id, part in placement.items():
            self.gpus_taken.setdefault(node_id, set()).update(part.gpu_ids)
            self.cpus_taken.setdefault(node_id, set()).update(part.cpu_ids)

    def assign(self, placement: Mapping[str, Resources]) -> dict[str, NodeShare]:
        named = {node_id: self._assign_on(node_id, want) for node_id, want in placement.items()}
        self._mark(named)
        return named

    def _assign_on(self, node_id: str, want: Resources) -> NodeShare:
        free_gpus = [g for g in self.node_gpu_ids[node_id] if g not in self.gpus_taken[node_id]]
        free_cpus = [c for c in range(self.node_cpus[node_id]) if c not in self.cpus_taken[node_id]]
        if len(free_gpus) < want.gpus or len(free_cpus) < want.cpus:
            raise RuntimeError(
                f"node {node_id} has no free devices for {want}: book and snapshot disagree"
            )
        return NodeShare(
            want.gpus,
            want.cpus,
            want.memory_mb,
            tuple(free_gpus[: want.gpus]),
            tuple(free_cpus[: want.cpus]),
        )
