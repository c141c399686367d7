"""Scheduler what-if runs: one workload replayed under two configurations, side by side.

An operator asks "what if the facility ran `slurm` instead of `fairshare`, or fairshare with a
heavier fairness weight?" The simulator (aifactory.sim) answers by replaying a workload through
the live `schedule()` under each configuration and measuring both (sim.metrics). The workload is
a shipped trace (sim.scenarios) or the facility's own history: its latest finished jobs, each
replayed with its real runtime. The simulator alone knows that runtime; the policy sees what it
would see live (the job's ask, its user time limit, what finished before) — except `oracle`,
which is handed true runtimes on purpose, as a bound (sim.engine).

Runs are in the background: a one-thread executor owned by `WhatIfRuns`, so at most one
replay takes the CPU at a time and a few more wait (`MAX_WAITING`; more is refused). A run is
queued → running → done | failed; a failure is kept as a message on the run, never raised to
whoever asked. Runs live in memory and are lost on restart: they are cheap to ask again and
say nothing the facility must keep. The facility serves from one process, so one process-wide
registry, `RUNS`, is shared by the API and the portal (AppState could own it instead; it is
here so the shared dependencies need not change).

Vocabulary: a *setting* is one side of the comparison (a policy and its knobs); an *ask* is the
workload, its size and the two settings; an *outcome* is one setting's figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import TERMINAL
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.scheduler import NodeView, Policy, schedule
from aifactory.services.principal import Principal
from aifactory.sim.engine import SimResult, Simulator, cluster
from aifactory.sim.metrics import summarise
from aifactory.sim.replay import POLICIES
from aifactory.sim.scenarios import Workload, workload
from aifactory.sim.traces import GPUS_PER_NODE, ITP_CLUSTERS, TraceJob
from aifactory.store.models import Job, Node, Project, User

log = logging.getLogger("aifactory.whatif")

HISTORY = "history"
# Shipped traces and the GPUs they are replayed on when the ask names none (None: say how many).
SCENARIOS: dict[str, int | None] = {
    "itp-merged": 1280,
    **{f"itp-{c}": (576 if c == "cluster04" else None) for c in ITP_CLUSTERS},
}
WORKLOADS = (HISTORY, *SCENARIOS)
MAX_JOBS = 2000  # a replay of this many finishes in seconds, not minutes
MAX_GPUS = 100_000
MAX_WAITING = 4
KEEP = 20  # runs remembered; the oldest finished go first
SAMPLES = 200  # utilisation-over-time points kept per outcome
HOUR = 3600.0
# The knobs each policy has (fairshare and oracle always backfill; fifo/easy keep no usage).
BACKFILL_KNOB = frozenset({"fifo", "easy", "slurm"})
FAIRNESS_KNOB = frozenset({"fairshare"})
HALF_LIFE_KNOB = frozenset({"slurm", "fairshare"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One side: a policy by its name (scheduler.NAMED, or the simulator's `oracle`) and the
    knobs to change from its defaults (None: keep)."""

    policy: str
    backfill: bool | None = None
    fairness_weight: float | None = None
    half_life_h: float | None = None

    @property
    def label(self) -> str:
        knobs = []
        if self.backfill is not None:
            knobs.append(f"backfill {'on' if self.backfill else 'off'}")
        if self.fairness_weight is not None:
            knobs.append(f"fairness weight {self.fairness_weight:g}")
        if self.half_life_h is not None:
            knobs.append(f"usage half-life {self.half_life_h:g} h")
        return self.policy + (f" ({', '.join(knobs)})" if knobs else "")

    def build(self) -> Policy:
        policy = POLICIES[self.policy]
        if self.backfill is not None:
            policy = replace(policy, backfill=self.backfill)
        if self.fairness_weight is not None:
            knobs = replace(policy.fairshare, fairness_weight=self.fairness_weight)
            policy = replace(policy, fairshare=knobs)
        if self.half_life_h is not None:
            policy = replace(policy, half_life_s=self.half_life_h * HOUR)
        return policy


@dataclass(frozen=True, slots=True)
class Ask:
    workload: str
    jobs: int
    a: Setting
    b: Setting
    gpus: int | None = None  # None: the trace's own size, or the facility's own nodes


@dataclass(frozen=True, slots=True)
class Outcome:
    side: str  # "A" or "B"
    label: str
    figures: dict[str, float]  # sim.metrics.KEYS
    unfinished: int  # jobs that never started (too large for the replayed cluster)
    busy: tuple[tuple[float, float], ...]  # (hours since the first submit, share of GPUs busy)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    ask: Ask
    by: str
    submitted_at: float
    state: str = "queued"  # queued, running, done, failed
    started_at: float | None = None
    ended_at: float | None = None
    message: str | None = None  # why it failed
    replayed_jobs: int = 0
    replayed_gpus: int = 0
    progress: float = 0.0  # share of the jobs replayed, both sides together
    outcomes: tuple[Outcome, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


@dataclass
class _Entry:
    run: Run
    done_jobs: int = 0


@dataclass
class WhatIfRuns:
    """The runs of this process and the one worker thread that replays them."""

    clock: Callable[[], float] = time.time
    _entries: dict[int, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None
    _next_id: int = 1

    def submit(self, ask: Ask, by: str, now: float, load: Callable[[], Workload]) -> Run:
        """Queue a replay of what `load` returns (called on the worker thread)."""
        with self._lock:
            waiting = sum(1 for e in self._entries.values() if not e.run.finished)
            if waiting >= MAX_WAITING:
                raise Conflict(
                    f"{waiting} what-if runs are already waiting: try again when one is done"
                )
            run = Run(self._next_id, ask, by, now)
            self._next_id += 1
            self._entries[run.id] = _Entry(run)
            self._forget_old()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatif")
            self._pool.submit(self._work, run.id, load)
        return run

    def get(self, run_id: int) -> Run:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                raise NotFound(f"what-if run {run_id} not found (runs are kept until a restart)")
            return self._seen(entry)

    def runs(self) -> list[Run]:
        """Newest first."""
        with self._lock:
            return [self._seen(e) for e in sorted(self._entries.values(), key=lambda e: -e.run.id)]

    def shutdown(self) -> None:
        """Finish every run asked for (each is short), then stop the worker."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _seen(self, entry: _Entry) -> Run:
        run = entry.run
        if run.state == "running" and run.replayed_jobs:
            return replace(run, progress=min(1.0, entry.done_jobs / (2 * run.replayed_jobs)))
        return run

    def _forget_old(self) -> None:
        finished = sorted(i for i, e in self._entries.items() if e.run.finished)
        for run_id in finished[: max(0, len(self._entries) - KEEP)]:
            del self._entries[run_id]

    def _update(self, run_id: int, **changes: object) -> Run:
        with self._lock:
            entry = self._entries[run_id]
            entry.run = replace(entry.run, **changes)  # type: ignore[arg-type]
            return entry.run

    def _tick(self, run_id: int, jobs: int) -> None:
        entry = self._entries.get(run_id)
        if entry is not None:
            entry.done_jobs += jobs  # only this thread writes it; readers see an int

    def _work(self, run_id: int, load: Callable[[], Workload]) -> None:
        run = self._update(run_id, state="running", started_at=self.clock())
        try:
            work = load()
            gpus = sum(n.capacity.gpus for n in work.nodes)
            self._update(run_id, replayed_jobs=len(work.jobs), replayed_gpus=gpus)
            outcomes = tuple(
                _replay(work, side, setting, lambda n: self._tick(run_id, n))
                for side, setting in (("A", run.ask.a), ("B", run.ask.b))
            )
        except Exception as exc:  # stored on the run for whoever looks; never a 500
            log.exception("what-if run %s failed", run_id)
            self._update(run_id, state="failed", ended_at=self.clock(), message=_reason(exc))
            return
        self._update(run_id, state="done", ended_at=self.clock(), outcomes=outcomes, progress=1.0)


RUNS = WhatIfRuns()  # the process's runs: see the module's docstring for why one, and here


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


# ---- the service calls ---------------------------------------------------------------------


def start(
    session: Session, principal: Principal, ask: Ask, *, now: float, runs: WhatIfRuns = RUNS
) -> Run:
    """Check the ask, take what it needs from the database now, and queue the replay."""
    principal.authorize(Action.SCHEDULER_WHATIF)
    check(ask)
    if ask.workload == HISTORY:
        history = _history(session, ask)
        return runs.submit(ask, principal.name, now, lambda: history)
    return runs.submit(ask, principal.name, now, lambda: _scenario(ask))


def get_run(principal: Principal, run_id: int, *, runs: WhatIfRuns = RUNS) -> Run:
    principal.authorize(Action.SCHEDULER_WHATIF)
    return runs.get(run_id)


def list_runs(principal: Principal, *, runs: WhatIfRuns = RUNS) -> list[Run]:
    principal.authorize(Action.SCHEDULER_WHATIF)
    return runs.runs()


def check(ask: Ask) -> None:
    """Every field the replay depends on, before anything is queued (each error names it)."""
    if ask.workload not in WORKLOADS:
        raise InvalidInput(
            f"unknown workload {ask.workload!r}; known: {', '.join(WORKLOADS)}", field="workload"
        )
    if not 1 <= ask.jobs <= MAX_JOBS:
        raise InvalidInput(f"must be between 1 and {MAX_JOBS}", field="jobs")
    if ask.gpus is not None and not 1 <= ask.gpus <= MAX_GPUS:
        raise InvalidInput(f"must be between 1 and {MAX_GPUS}", field="gpus")
    if ask.gpus is None and SCENARIOS.get(ask.workload, 0) is None:
        raise InvalidInput(f"say how many GPUs to replay {ask.workload} on", field="gpus")
    for side, setting in (("a", ask.a), ("b", ask.b)):
        check_setting(setting, side)
    if ask.a == ask.b:
        raise InvalidInput("is the same as A: change the policy or a setting", field="b")


def check_setting(setting: Setting, side: str) -> None:
    if setting.policy not in POLICIES:
        raise InvalidInput(
            f"unknown policy {setting.policy!r}; known: {', '.join(POLICIES)}",
            field=f"{side}.policy",
        )
    knobs = (
        ("backfill", setting.backfill, BACKFILL_KNOB),
        ("fairness_weight", setting.fairness_weight, FAIRNESS_KNOB),
        ("half_life_h", setting.half_life_h, HALF_LIFE_KNOB),
    )
    for name, value, policies in knobs:
        if value is not None and setting.policy not in policies:
            raise InvalidInput(
                f"{setting.policy} has no such setting (only {', '.join(sorted(policies))})",
                field=f"{side}.{name}",
            )
    if setting.fairness_weight is not None and not 0 <= setting.fairness_weight <= 10:
        raise InvalidInput("must be between 0 and 10", field=f"{side}.fairness_weight")
    if setting.half_life_h is not None and not 1 <= setting.half_life_h <= 24 * 365:
        raise InvalidInput("must be between 1 hour and a year", field=f"{side}.half_life_h")


# ---- workloads -----------------------------------------------------------------------------


def _scenario(ask: Ask) -> Workload:
    return workload(ask.workload, gpus=ask.gpus or SCENARIOS[ask.workload], jobs=ask.jobs)


def _history(session: Session, ask: Ask) -> Workload:
    """The facility's latest `ask.jobs` jobs that ran and ended, on its own GPU nodes (or on
    `ask.gpus` GPUs in 8-GPU nodes): its real workload, with its real user time limits."""
    jobs = history_jobs(session, ask.jobs)
    if not jobs:
        raise InvalidInput("the facility has no finished jobs to replay yet", field="workload")
    if ask.gpus is not None:
        nodes = cluster([GPUS_PER_NODE] * max(1, ask.gpus // GPUS_PER_NODE))
    else:
        nodes = _facility_nodes(session)
        if not nodes:
            raise InvalidInput("the facility has no GPU nodes: say how many GPUs", field="gpus")
    return Workload(HISTORY, jobs, nodes)


def history_jobs(session: Session, count: int) -> list[TraceJob]:
    """Ended jobs that ran, newest `count` by submit time, oldest first and numbered from 1.
    Their duration (ended − started) is what the simulator alone knows."""
    rows = session.execute(
        select(
            Job.submitted_at,
            Job.started_at,
            Job.ended_at,
            Job.gpus_per_node,
            Job.nodes,
            Job.time_limit_s,
            Job.preemptible,
            Project.name,
            User.name,
        )
        .join(Project, Project.id == Job.project_id)
        .join(User, User.id == Job.user_id)
        .where(
            Job.state.in_([s.value for s in TERMINAL]),
            Job.started_at.is_not(None),
            Job.ended_at.is_not(None),
        )
        .order_by(Job.submitted_at.desc(), Job.id.desc())
        .limit(count)
    )
    ordered = sorted(rows, key=lambda r: r[0])
    return [
        TraceJob(
            job_id=i + 1,
            submit=submitted,
            duration=max(0.0, float(ended or 0.0) - float(started or 0.0)),
            gpus=per_node * nodes,
            nodes=nodes,
            project=project,
            user=user,
            time_limit=float(limit),
            preemptible=preemptible,
        )
        for i, (submitted, started, ended, per_node, nodes, limit, preemptible, project, user) in (
            enumerate(ordered)
        )
    ]


def _facility_nodes(session: Session) -> tuple[NodeView, ...]:
    sizes = session.scalars(
        select(Node.gpus).where(Node.schedulable.is_(True), Node.gpus > 0).order_by(Node.id)
    ).all()
    return cluster(list(sizes))


# ---- one side's replay ---------------------------------------------------------------------


def _replay(work: Workload, side: str, setting: Setting, tick: Callable[[int], None]) -> Outcome:
    sample_s = _sample_every(work.jobs)
    result = Simulator(
        work.jobs, work.nodes, setting.build(), schedule, sample_s=sample_s, progress=tick
    ).run()
    return Outcome(side, setting.label, summarise(result), result.unfinished, _busy(result))


def _sample_every(jobs: Sequence[TraceJob]) -> float:
    """Hourly, as the CLI does, unless the workload is short (a small facility's history):
    then often enough for the fairness metric to see it, about `SAMPLES` times."""
    if not jobs:
        return HOUR
    span = max(j.submit + j.duration for j in jobs) - min(j.submit for j in jobs)
    return min(HOUR, max(1.0, span / SAMPLES))


def _busy(result: SimResult) -> tuple[tuple[float, float], ...]:
    samples = result.samples
    if not samples or result.total_gpus <= 0:
        return ()
    step = max(1, len(samples) // SAMPLES)
    first = samples[0].at
    return tuple(
        ((s.at - first) / HOUR, sum(s.running.values()) / result.total_gpus)
        for s in samples[::step]
    )
