"""The discrete-event simulator: arrivals and completions on a modelled cluster.

At every instant something happens (jobs arrive or end), it builds the same `Snapshot` the live
control loop builds and calls `schedule(snapshot, policy, now)`; Start decisions begin jobs,
which end at start + min(true duration, user limit) (a job past its limit is killed, as live).
A Preempt decision stops a job after the policy's grace period; its work is lost and it waits
again with its original submit time, to start over. Like the live facility, the simulator
keeps each project's decayed usage and a `RuntimeHistory` of finished jobs for the snapshot;
the scheduler never sees a true duration — except `oracle`, which is handed them on purpose.
Snapshots of who runs and who waits are taken every `sample_s` for the fairness metric.
Maintenance windows are in every snapshot, as live; the end of a window is an instant too,
since work held back by it may start then.

The policy is not asked at an instant where its answer is known to be empty (`_may_decide`):
every Start needs `nodes` nodes that each have the job's GPUs free now, and only fair-share's
quota reclaim preempts. So when no waiting job's (GPUs per node, nodes) finds that many nodes
in the tally of free GPUs, and no quota can be reclaimed, the call would start nothing and
stop nothing; skipping it changes no decision and spares a plan of every node (issue 22).
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, Policy, RunningJob, Snapshot, Start, schedule
from aifactory.scheduler.decisions import Decision, Preempt
from aifactory.scheduler.estimates import RuntimeEstimates, RuntimeHistory
from aifactory.scheduler.maintenance import Window
from aifactory.scheduler.snapshot import ProjectView
from aifactory.scheduler.usage import DecayedUsage
from aifactory.sim.traces import TraceJob

CPUS_PER_GPU = 1  # modelled nodes offer one CPU slot per GPU plus these; jobs ask one per GPU
MEMORY_MB = 1_000_000
Scheduler = Callable[[Snapshot, Policy, float], list[Decision]]


@dataclass(frozen=True, slots=True)
class Finished:
    job: TraceJob
    start: float
    end: float
    nodes: tuple[str, ...] = ()  # where it ran (its last run, if it was preempted)

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
    decision_s: list[float] = field(default_factory=list)  # each call of the policy
    wall_s: float = 0.0
    unfinished: int = 0
    preemptions: int = 0
    lost_gpu_s: float = 0.0  # GPU-seconds of work thrown away by preemption
    capped: bool = False  # stopped at `max_wall_s`: `unfinished` counts every job not done


class TrueRuntimes:
    """What only the simulator knows, handed to `oracle` and to no other policy."""

    def __init__(self, jobs: Mapping[int, TraceJob]) -> None:
        self.jobs = jobs

    def runtime(self, job: PendingJob | RunningJob) -> float:
        return min(self.jobs[job.job_id].duration, job.time_limit_s)


def cluster(gpus_per_node: Sequence[int], block_nodes: int = 0) -> tuple[NodeView, ...]:
    """Nodes `n0000`, …; with `block_nodes`, in network blocks of that many (`b000`, …)."""
    return tuple(
        NodeView(
            f"n{i:04d}",
            Resources(g, g * CPUS_PER_GPU + 8, MEMORY_MB),
            "gpu",
            block=f"b{i // block_nodes:03d}" if block_nodes > 0 else None,
        )
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
        quotas: Mapping[str, int] | None = None,
        maintenance: Sequence[Window] = (),
        shares: Mapping[str, float] | None = None,
        max_wall_s: float | None = None,
    ) -> None:
        self.jobs = sorted(jobs, key=lambda j: (j.submit, j.job_id))
        self.nodes = nodes
        self.policy = policy
        self.scheduler = scheduler
        self.sample_s = sample_s
        self.progress = progress
        self.max_wall_s = max_wall_s if max_wall_s is not None else math.inf
        self.by_id = {job.job_id: job for job in self.jobs}
        self.pending: dict[int, PendingJob] = {}
        self.running: dict[int, RunningJob] = {}
        self.starts: dict[int, float] = {}
        self.free = {n.id: n.capacity for n in nodes if n.schedulable}  # kept as jobs start/end
        self.free_gpus = Counter(room.gpus for room in self.free.values())  # nodes by free GPUs
        self.asks: Counter[tuple[int, int]] = Counter()  # waiting (GPUs per node, nodes)
        self.ends: list[tuple[float, int, int]] = []  # heap of (end time, job id, run number)
        self.runs: dict[int, int] = {}  # job id → its current run number (older ends are void)
        self.stopping: set[int] = set()  # preempted, ending after the grace period
        self.usage = DecayedUsage(policy.half_life_s)
        self.holding: dict[str, int] = defaultdict(int)  # GPUs held now, by project
        self.history = RuntimeHistory()
        self.runtimes: RuntimeEstimates = (
            TrueRuntimes(self.by_id) if policy.name == "oracle" else self.history
        )
        quotas = quotas or {}
        self.project_names = sorted({job.project for job in self.jobs} | set(quotas))
        self.quotas = quotas
        self.shares = shares or {}  # entitled shares by project (allocations); missing: 1
        self.grace_s = policy.fairshare.preemption_grace_s
        self.maintenance = tuple(sorted(maintenance, key=lambda w: (w.begins_at, w.window_id)))
        self.window_ends = sorted({w.ends_at for w in self.maintenance})
        # Only `schedule` is known to start jobs only where they fit now and to preempt only
        # for fair-share quotas; any other scheduler is asked at every instant.
        reclaims = policy.name == "fairshare" and any(q > 0 for q in quotas.values())
        self.skips = scheduler is schedule and not reclaims

    def run(self) -> SimResult:
        began = time.perf_counter()
        result = SimResult([], [], sum(n.capacity.gpus for n in self.nodes))
        next_arrival, next_sample = 0, self.jobs[0].submit if self.jobs else 0.0
        now = -math.inf
        while next_arrival < len(self.jobs) or self.ends or self.pending:
            now = self._next_instant(next_arrival, now)
            self.usage.advance(now, self.holding)
            while next_sample <= now:
                result.samples.append(self._sample(next_sample))
                next_sample += self.sample_s
            self._complete_until(now, result)
            next_arrival = self._arrive_until(now, next_arrival)
            if self.pending and self._may_decide():
                self._decide(now, result)
            no_window = self._window_after(now) is None
            if not self.ends and next_arrival >= len(self.jobs) and no_window:
                break  # nothing runs, nothing comes: what waits can never start
            if time.perf_counter() - began > self.max_wall_s:
                result.capped = True
                break
        result.unfinished = len(self.jobs) - len(result.finished)
        result.wall_s = time.perf_counter() - began
        return result

    def _next_instant(self, next_arrival: int, now: float) -> float:
        candidates = [self.ends[0][0]] if self.ends else []
        if next_arrival < len(self.jobs):
            candidates.append(self.jobs[next_arrival].submit)
        if self.pending and (window_end := self._window_after(now)) is not None:
            candidates.append(window_end)
        return min(candidates)

    def _window_after(self, now: float) -> float | None:
        """The first end of a maintenance window after `now`, if work waits for one."""
        found = bisect.bisect_right(self.window_ends, now)
        return self.window_ends[found] if found < len(self.window_ends) else None

    def _live_windows(self, now: float) -> tuple[Window, ...]:
        return tuple(w for w in self.maintenance if w.ends_at > now)

    def _complete_until(self, now: float, result: SimResult) -> None:
        while self.ends and self.ends[0][0] <= now:
            end, job_id, run = heapq.heappop(self.ends)
            if self.runs.get(job_id) != run:
                continue  # that run was preempted
            held = self.running.pop(job_id)
            for node_id, used in held.placement.items():
                self._set_free(node_id, self.free[node_id] + used)
            self.holding[held.project] -= held.gpus
            job = self.by_id[job_id]
            if job_id in self.stopping:  # preempted: the work is lost, it waits again
                self.stopping.discard(job_id)
                result.preemptions += 1
                result.lost_gpu_s += held.gpus * (end - held.started_at)
                self._wait(job)
                continue
            self.history.record(job.user, job.project, held.time_limit_s, end - held.started_at)
            result.finished.append(Finished(job, self.starts[job_id], end, tuple(held.placement)))
            if self.progress:
                self.progress(1)

    def _arrive_until(self, now: float, index: int) -> int:
        while index < len(self.jobs) and self.jobs[index].submit <= now:
            self._wait(self.jobs[index])
            index += 1
        return index

    def _wait(self, job: TraceJob) -> None:
        pending = self.pending[job.job_id] = _pending(job)
        self.asks[pending.per_node.gpus, pending.nodes] += 1

    def _set_free(self, node_id: str, room: Resources) -> None:
        self.free_gpus[self.free[node_id].gpus] -= 1
        self.free_gpus[room.gpus] += 1
        self.free[node_id] = room

    def _may_decide(self) -> bool:
        """False only when the policy would surely decide nothing (module docstring)."""
        if not self.skips:
            return True
        for (gpus, nodes), count in self.asks.items():
            if count and sum(n for free, n in self.free_gpus.items() if free >= gpus) >= nodes:
                return True
        return False

    def _decide(self, now: float, result: SimResult) -> None:
        snapshot = Snapshot(
            self.nodes,
            tuple(self.running.values()),
            tuple(self.pending.values()),
            self.free,
            projects=self._projects(),
            runtimes=self.runtimes,
            maintenance=self._live_windows(now) if self.maintenance else (),
        )
        began = time.perf_counter()
        decisions = self.scheduler(snapshot, self.policy, now)
        result.decision_s.append(time.perf_counter() - began)
        for decision in decisions:
            if isinstance(decision, Start):
                self._start(decision, now)
            elif isinstance(decision, Preempt):
                self._preempt(decision, now)

    def _projects(self) -> dict[str, ProjectView]:
        usage = self.usage.usage
        return {
            name: ProjectView(
                name, self.shares.get(name, 1.0), self.quotas.get(name, 0), usage.get(name, 0.0)
            )
            for name in self.project_names
        }

    def _preempt(self, decision: Preempt, now: float) -> None:
        running = self.running.get(decision.job_id)
        if running is None or running.stopping or not running.preemptible:
            return
        self.running[decision.job_id] = replace(running, stopping=True)
        self.stopping.add(decision.job_id)
        run = self.runs[decision.job_id] + 1
        self.runs[decision.job_id] = run
        heapq.heappush(self.ends, (now + self.grace_s, decision.job_id, run))

    def _start(self, decision: Start, now: float) -> None:
        pending = self.pending.pop(decision.job_id)
        self.asks[pending.per_node.gpus, pending.nodes] -= 1
        job = self.by_id[decision.job_id]
        limit = job.time_limit if job.time_limit is not None else float("inf")
        running = RunningJob(
            job.job_id,
            job.project,
            decision.placement,
            now,
            pending.time_limit_s,
            user=job.user,
            preemptible=pending.preemptible,
        )
        self.running[job.job_id] = running
        self.holding[job.project] += running.gpus
        self.starts[job.job_id] = now
        for node_id, used in decision.placement.items():
            self._set_free(node_id, self.free[node_id] - used)
        run = self.runs.get(job.job_id, 0) + 1
        self.runs[job.job_id] = run
        heapq.heappush(self.ends, (now + min(job.duration, limit), job.job_id, run))

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
        preemptible=job.preemptible,
        user=job.user,
        one_block=job.one_block,
    )
