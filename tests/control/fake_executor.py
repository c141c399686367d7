"""An executor the test drives by hand: it records what it was asked and reports what it is told.

For control-loop logic only; the real local executor is tested end to end elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import Launch, NodeOffer, Observation, Phase


class FakeExecutor:
    name = "local"
    capabilities = frozenset[str]()

    def __init__(self, gpus: int = 8, cpus: int = 16) -> None:
        self.node = Node(
            id="fake-1", site="NL", gpu_model="h100", capacity=Resources(gpus, cpus, 64_000)
        )
        self.gpu_ids = [f"GPU-{i}" for i in range(gpus)]
        self.started: list[Launch] = []
        self.cancelled: list[int] = []
        self.observations: dict[int, Observation] = {}

    def inventory(self) -> list[NodeOffer]:
        return [NodeOffer(self.node, self.gpu_ids)]

    def start(self, launch: Launch) -> None:
        self.started.append(launch)
        self.observations.setdefault(launch.job_id, Observation(Phase.STARTING))

    def poll(self, job_ids: Iterable[int]) -> dict[int, Observation]:
        return {i: self.observations.get(i, Observation(Phase.NOT_STARTED)) for i in job_ids}

    def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)

    def log_path(self, job_id: int) -> Path:
        return Path("/nonexistent") / str(job_id)

    def starts_of(self, job_id: int) -> int:
        return sum(1 for launch in self.started if launch.job_id == job_id)
