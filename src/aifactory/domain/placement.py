"""Where an admitted job runs: on each node, how much it holds and which devices by name.

Stored on the job row as plain JSON (`{node: {gpus, cpus, memory_mb, gpu_ids, cpu_ids}}`) and
read everywhere as this one typed value (`placement_of`), so no reader parses the dict itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aifactory.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class NodeShare:
    """One node's part of a job: its resources and the GPU ids and CPU slots that carry them."""

    gpus: int
    cpus: int
    memory_mb: int
    gpu_ids: tuple[str, ...] = ()
    cpu_ids: tuple[int, ...] = ()

    @property
    def resources(self) -> Resources:
        return Resources(self.gpus, self.cpus, self.memory_mb)

    def stored(self) -> dict[str, Any]:
        return {
            "gpus": self.gpus,
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "gpu_ids": list(self.gpu_ids),
            "cpu_ids": list(self.cpu_ids),
        }


Placement = Mapping[str, NodeShare]


def placement_of(stored: Mapping[str, Any] | None) -> dict[str, NodeShare]:
    """The stored JSON as typed shares, by node id in order (None: placed nowhere)."""
    return {
        node: NodeShare(
            int(part.get("gpus", 0)),
            int(part.get("cpus", 0)),
            int(part.get("memory_mb", 0)),
            tuple(str(i) for i in part.get("gpu_ids") or ()),
            tuple(int(i) for i in part.get("cpu_ids") or ()),
        )
        for node, part in sorted((stored or {}).items())
    }


def stored_placement(placement: Placement) -> dict[str, dict[str, Any]]:
    return {node: share.stored() for node, share in placement.items()}


def gpus_of(placement: Placement) -> int:
    return sum(share.gpus for share in placement.values())
