"""The facility as the scheduler sees it at one instant: nodes, what runs, what waits.

Keeps what waits (`pending`) apart from what is used (`running`); `free_by_node()` derives the
free capacity from the two, so a snapshot can never disagree with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aifactory.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class NodeView:
    id: str
    capacity: Resources
    gpu_model: str | None = None
    schedulable: bool = True


@dataclass(frozen=True, slots=True)
class RunningJob:
    job_id: int
    project: str
    placement: Mapping[str, Resources]
    started_at: float
    time_limit_s: float

    @property
    def expected_end(self) -> float:
        """The latest the job can end: a real scheduler knows only the user's time limit."""
        return self.started_at + self.time_limit_s


@dataclass(frozen=True, slots=True)
class PendingJob:
    job_id: int
    project: str
    submitted_at: float
    per_node: Resources
    nodes: int = 1
    gpu_model: str | None = None
    time_limit_s: float = 3600.0
    priority: int = 0
    preemptible: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    nodes: tuple[NodeView, ...]
    running: tuple[RunningJob, ...] = ()
    pending: tuple[PendingJob, ...] = ()

    def free_by_node(self) -> dict[str, Resources]:
        free = {n.id: n.capacity for n in self.nodes if n.schedulable}
        for job in self.running:
            for node_id, used in job.placement.items():
                if node_id in free:
                    free[node_id] = free[node_id] - used
        return free

    def gpu_model_of(self) -> dict[str, str | None]:
        return {n.id: n.gpu_model for n in self.nodes}
