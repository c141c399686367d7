"""Small fluent builders for scheduler tests.

    a_node("n1").gpus(8, "h100")
    a_job(1).gpus(4).nodes(2).limit(3600).submitted(10)
    running(100, {"n1": 4}, started_at=0, limit=1000)
    snapshot(nodes=[...], running=[...], pending=[...])

Defaults keep the arithmetic on GPUs: a node has 8 H100s, 64 CPUs and 512 GB; a job asks for
one GPU, one CPU and 1 GB on one node, is submitted at its id and has a one-hour limit. In a
`running(...)` placement an int means that many GPUs and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Self

from aifactory.domain.resources import Resources
from aifactory.scheduler import Decision, NodeView, PendingJob, RunningJob, Snapshot, Start


class NodeBuilder:
    def __init__(self, node_id: str) -> None:
        self._view = NodeView(node_id, Resources(8, 64, 512_000), "h100")

    def gpus(self, count: int, model: str | None = None) -> Self:
        capacity = replace(self._view.capacity, gpus=count)
        self._view = replace(self._view, capacity=capacity)
        if model is not None:
            self._view = replace(self._view, gpu_model=model)
        return self

    def cpus(self, count: int) -> Self:
        self._view = replace(self._view, capacity=replace(self._view.capacity, cpus=count))
        return self

    def memory(self, mb: int) -> Self:
        self._view = replace(self._view, capacity=replace(self._view.capacity, memory_mb=mb))
        return self

    def model(self, model: str | None) -> Self:
        self._view = replace(self._view, gpu_model=model)
        return self

    def unschedulable(self) -> Self:
        self._view = replace(self._view, schedulable=False)
        return self

    def build(self) -> NodeView:
        return self._view


class JobBuilder:
    def __init__(self, job_id: int, project: str) -> None:
        self._job = PendingJob(
            job_id=job_id,
            project=project,
            submitted_at=float(job_id),
            per_node=Resources(1, 1, 1024),
        )

    def gpus(self, count: int, model: str | None = None) -> Self:
        self._job = replace(self._job, per_node=replace(self._job.per_node, gpus=count))
        if model is not None:
            self._job = replace(self._job, gpu_model=model)
        return self

    def cpus(self, count: int) -> Self:
        self._job = replace(self._job, per_node=replace(self._job.per_node, cpus=count))
        return self

    def memory(self, mb: int) -> Self:
        self._job = replace(self._job, per_node=replace(self._job.per_node, memory_mb=mb))
        return self

    def nodes(self, count: int) -> Self:
        self._job = replace(self._job, nodes=count)
        return self

    def model(self, model: str | None) -> Self:
        self._job = replace(self._job, gpu_model=model)
        return self

    def limit(self, seconds: float) -> Self:
        self._job = replace(self._job, time_limit_s=seconds)
        return self

    def submitted(self, at: float) -> Self:
        self._job = replace(self._job, submitted_at=at)
        return self

    def build(self) -> PendingJob:
        return self._job


def a_node(node_id: str) -> NodeBuilder:
    return NodeBuilder(node_id)


def a_job(job_id: int, project: str = "p") -> JobBuilder:
    return JobBuilder(job_id, project)


def _resources(amount: int | Resources) -> Resources:
    return amount if isinstance(amount, Resources) else Resources(gpus=amount)


def running(
    job_id: int,
    placement: Mapping[str, int | Resources],
    started_at: float = 0.0,
    limit: float = 3600.0,
    project: str = "p",
) -> RunningJob:
    used = {node_id: _resources(amount) for node_id, amount in placement.items()}
    return RunningJob(job_id, project, used, started_at, limit)


def snapshot(
    nodes: Iterable[NodeBuilder | NodeView],
    running: Sequence[RunningJob] = (),
    pending: Iterable[JobBuilder | PendingJob] = (),
) -> Snapshot:
    return Snapshot(
        nodes=tuple(n.build() if isinstance(n, NodeBuilder) else n for n in nodes),
        running=tuple(running),
        pending=tuple(j.build() if isinstance(j, JobBuilder) else j for j in pending),
    )


def started_gpus(decisions: Sequence[Decision]) -> list[tuple[int, dict[str, int]]]:
    """Decisions as `[(job_id, {node: gpus})]`, in order; fails on anything but `Start`."""
    out: list[tuple[int, dict[str, int]]] = []
    for decision in decisions:
        assert isinstance(decision, Start), decision
        out.append((decision.job_id, {n: r.gpus for n, r in decision.placement.items()}))
    return out
