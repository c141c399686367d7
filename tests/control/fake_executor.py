"""An executor the test drives by hand: it records what it was asked and reports what it is told.

For control-loop logic only; the real local executor is tested end to end elsewhere. Tests set
`observations[job_id]`: what the executor sees of that job's latest started attempt (any other
attempt it has not seen).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import Attempt, Launch, NodeOffer, Observation, Phase

NOT_STARTED = Observation(Phase.NOT_STARTED)


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
        self.preempted: list[Attempt] = []
        self.calls: list[tuple[str, Attempt]] = []  # every start, cancel and preempt, in order
        self.observations: dict[int, Observation] = {}
        self.attempt_of: dict[int, int] = {}  # job id → the attempt `observations` is about
        self.foreign: dict[str, Resources] = {}  # node → what work not ours holds there

    def foreign_load(self) -> dict[str, Resources]:
        return dict(self.foreign)

    def inventory(self) -> list[NodeOffer]:
        return [NodeOffer(self.node, self.gpu_ids)]

    def start(self, launch: Launch) -> None:
        self.started.append(launch)
        self.calls.append(("start", launch.attempt))
        if self.attempt_of.get(launch.job_id) != launch.attempt.number:
            self.observations.pop(launch.job_id, None)  # a new attempt: seen afresh
            self.attempt_of[launch.job_id] = launch.attempt.number
        self.observations.setdefault(launch.job_id, Observation(Phase.STARTING))

    def poll(self, attempts: Iterable[Attempt]) -> dict[Attempt, Observation]:
        return {attempt: self._seen(attempt) for attempt in attempts}

    def _seen(self, attempt: Attempt) -> Observation:
        if self.attempt_of.get(attempt.job_id, attempt.number) != attempt.number:
            return NOT_STARTED
        return self.observations.get(attempt.job_id, NOT_STARTED)

    def cancel(self, attempt: Attempt) -> None:
        self.cancelled.append(attempt.job_id)
        self.calls.append(("cancel", attempt))

    def preempt(self, attempt: Attempt) -> None:
        self.preempted.append(attempt)
        self.calls.append(("preempt", attempt))

    def log_path(self, job_id: int) -> Path:
        return Path("/nonexistent") / str(job_id)

    def starts_of(self, job_id: int, attempt: int | None = None) -> int:
        return sum(
            1
            for launch in self.started
            if launch.job_id == job_id and attempt in (None, launch.attempt.number)
        )
