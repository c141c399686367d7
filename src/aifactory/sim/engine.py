"""The discrete-event simulator: arrivals and completions on a modelled cluster.

At every instant something happens (jobs arrive or end), it builds the same `Snapshot` the live
control loop builds and calls `schedule(snapshot, policy, now)`; Start decisions begin jobs,
which end at start + min(true duration, user limit) (a job past its limit is killed, as live).
The scheduler never sees the true duration. Snapshots of who runs and who waits are taken every
`sample_s` for the fairness metric.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, Policy, RunningJob, Snapshot, Start
from aifactory.scheduler.decisions import Decision
from aifactory.sim.traces import TraceJob

CPUS_PER_GPU = 1  # modelled nodes offer one CPU slot per GPU plus these; jobs ask one per GPU
MEMORY_MB = 1_000_000
Scheduler = Callable[[Snapshot, Policy, float], list[Decision]]


@dataclass(frozen=True, slots=True)
class Finished:
    job: TraceJob
    start: float
    end: float

    @property
    def wait(self) -> float:
        return self.start - self.job.submit

    @property
    def jct(self) -> float:
        return self.end - self.job.submit

    @property
    def runtime(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Sample:
    """Who held and who wanted GPUs at one instant (GPUs by project)."""

    at: float
    running: dict[str, int]
    waiting: dict[str, int]


@dataclass
class SimResult:
    finished: list[Finished]
    samples: list[Sample]
    total_gpus: int
    decision_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    unfinished: int = 0


def cluster(gpus_per_node: Sequence[int]) -> tuple[NodeView, ...]:
    return tuple(
        NodeView(f"n{i:04d}", Resources(g, g * CPUS_PER_GPU + 8, MEMORY_MB), "gpu")
        for i, g in enumerate(gpus_per_node)
    )


class Simulator:
    def __init__(
        self,
        jobs: Sequence[TraceJob],
        nodes: tuple[NodeView, ...],
        policy: Policy,
        scheduler: Scheduler,
        *,
        sample_s: float = 3600.0,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.jobs = sorted(jobs, key=lambda j: (j.submit, j.job_id))
        self.nodes = nodes
        self.policy = policy
        self.scheduler = scheduler
        self.sample_s = sample_s
        self.progress = progress
        self.by_id = {job.job_id: job for job in self.jobs}
        self.pending: dict[int, PendingJob] = {}
        self.running: dict[int, RunningJob] = {}
        self.starts: dict[int, float] = {}
        self.free = {n.id: n.capacity for n in nodes if n.schedulable}  # kept as jobs start/end
        self.ends: list[tuple[float, int]] = []  # heap of (end time, job id)

    def run(self) -> SimResult:
        began = time.perf_counter()
        result = SimResult([], [], sum(n.capacity.gpus for n in self.nodes))
        next_arrival, next_sample = 0, self.jobs[0].submit if self.jobs else 0.0
        while next_arrival < len(self.jobs) or self.ends:
            now = self._next_instant(next_arrival)
            while next_sample <= now:
                result.samples.append(self._sample(next_sample))
                next_sample += self.sample_s
            self._complete_until(now, result)
            next_arrival = self._arrive_until(now, next_arrival)
            if self.pending:
                self._decide(now, result)
            if not self.ends and next_arrival >= len(self.jobs):
                break  # nothing runs, nothing comes: what waits can never start
        result.unfinished = len(self.pending)
        result.wall_s = time.perf_counter() - began
        return result

    def _next_instant(self, next_arrival: int) -> float:
        candidates = [self.ends[0][0]] if self.ends else []
        if next_arrival < len(self.jobs):
            candidates.append(self.jobs[next_arrival].submit)
        return min(candidates)

    def _complete_until(self, now: float, result: SimResult) -> None:
        while self.ends and self.ends[0][0] <= now:
            end, job_id = heapq.heappop(self.ends)
            for node_id, used in self.running.pop(job_id).placement.items():
                self.free[node_id] = self.free[node_id] + used
            result.finished.append(Finished(self.by_id[job_id], self.starts[job_id], end))
            if self.progress:
                self.progress(1)

    def _arrive_until(self, now: float, index: int) -> int:
        while index < len(self.jobs) and self.jobs[index].submit <= now:
            job = self.jobs[index]
            self.pending[job.job_id] = _pending(job)
            index += 1
        return index

    def _decide(self, now: float, result: SimResult) -> None:
        snapshot = Snapshot(
            self.nodes, tuple(self.running.values()), tuple(self.pending.values()), self.free
        )
        began = time.perf_counter()
        decisions = self.scheduler(snapshot, self.policy, now)
        result.decision_s.append(time.perf_counter() - began)
        for decision in decisions:
            if isinstance(decision, Start):
                self._start(decision, now)

    def _start(self, decision: Start, now: float) -> None:
        pending = self.pending.pop(decision.job_id)
        job = self.by_id[decision.job_id]
        limit = job.time_limit if job.time_limit is not None else float("inf")
        self.running[job.job_id] = RunningJob(
            job.job_id, job.project, decision.placement, now, pending.time_limit_s
        )
        self.starts[job.job_id] = now
        for node_id, used in decision.placement.items():
            self.free[node_id] = self.free[node_id] - used
        heapq.heappush(self.ends, (now + min(job.duration, limit), job.job_id))

    def _sample(self, at: float) -> Sample:
        running: dict[str, int] = defaultdict(int)
        waiting: dict[str, int] = defaultdict(int)
        for job in self.running.values():
            running[job.project] += sum(r.gpus for r in job.placement.values())
        for pending in self.pending.values():
            waiting[pending.project] += pending.per_node.gpus * pending.nodes
        return Sample(at, dict(running), dict(waiting))


def _pending(job: TraceJob) -> PendingJob:
    """What the scheduler may know of a trace job: its ask and its limit, not its runtime."""
    per_node = job.gpus_per_node
    return PendingJob(
        job_id=job.job_id,
        project=job.project,
        submitted_at=job.submit,
        per_node=Resources(per_node, max(1, per_node) * CPUS_PER_GPU, 1024),
        nodes=job.nodes,
        time_limit_s=job.time_limit if job.time_limit is not None else float("inf"),
    )
