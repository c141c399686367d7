"""Efficiency reports (as Slurm's `seff`): what a job asked for against what it used, per
attempt and over the whole job, read from its usage records (accounting.budget.settle keeps
what the executor measured beside what it metered).

Vocabulary: *asked* is what an attempt held — CPUs × its wall time, memory, GPUs; *used* is
what its executor measured — CPU time, peak resident memory (sampled), GPU utilisation and peak
GPU memory. A figure not measured is None ("not measured"): nothing here is estimated. An
*efficiency* is used / asked, in percent. Over a whole job a figure is given only when every
attempt of it was measured; otherwise it would claim more than is known.

Hints say in plain words what to ask for next time, only when a job asked far more than it
used (under `FAR_BELOW` of it; for memory, when asking less frees `MIN_SAVING_MB` at least),
only from measured figures, and only for a job that succeeded (one that failed or was stopped
says little of what it needed); CPU, GPU and time hints only after `MIN_HINT_S` of running,
when a job's start no longer dominates.

The least efficient jobs of a project are those that wasted most: GPU-hours held idle (where
utilisation was measured), then CPU-hours held idle, then memory held unused (MB-hours), then
the newest; ranked in Python among its latest `CANDIDATES` finished jobs.

Who sees it: whoever may read the job (services.jobs.get_job); a project's list, whoever may
read that project's jobs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import TERMINAL, JobState
from aifactory.domain.permissions import Action
from aifactory.services.job_view import JobView, view_of, views_of
from aifactory.services.jobs import get_job
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import Job, UsageRecord

FAR_BELOW = 0.25  # used under a quarter of what was asked: worth a hint
MIN_HINT_S = 60.0
HEADROOM = 1.5  # a memory suggestion leaves half as much again as the peak
MIN_SAVING_MB = 1024  # a memory hint that would free less is not worth the words
CANDIDATES = 500
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Use:
    """Asked against used, over one attempt or a whole job. None: not measured."""

    wall_s: float
    cpus: int
    cpu_s: float  # asked: CPUs × wall time
    cpu_time_s: float | None
    memory_mb: int
    peak_rss_mb: float | None
    gpus: int
    gpu_s: float  # asked: GPUs × wall time
    gpu_utilisation_pct: float | None
    peak_gpu_memory_mb: float | None

    @property
    def cpu_efficiency_pct(self) -> float | None:
        return _pct(self.cpu_time_s, self.cpu_s)

    @property
    def memory_efficiency_pct(self) -> float | None:
        return _pct(self.peak_rss_mb, self.memory_mb)

    @property
    def idle_gpu_s(self) -> float:
        """GPU-seconds held but not busy (0 where utilisation was not measured)."""
        busy = self.gpu_utilisation_pct
        return 0.0 if busy is None else self.gpu_s * max(0.0, 1 - busy / 100)

    @property
    def idle_cpu_s(self) -> float:
        return 0.0 if self.cpu_time_s is None else max(0.0, self.cpu_s - self.cpu_time_s)

    @property
    def unused_memory_mb_s(self) -> float:
        peak = self.peak_rss_mb
        return 0.0 if peak is None else max(0.0, self.memory_mb - peak) * self.wall_s

    @property
    def measured(self) -> bool:
        figures = (self.cpu_time_s, self.peak_rss_mb, self.gpu_utilisation_pct)
        return any(figure is not None for figure in figures)


@dataclass(frozen=True, slots=True)
class AttemptUse:
    attempt: int
    started_at: float
    ended_at: float
    use: Use


@dataclass(frozen=True, slots=True)
class Efficiency:
    job_id: int
    name: str
    project: str
    owner: str
    state: str
    time_limit_s: int
    attempts: tuple[AttemptUse, ...]
    overall: Use | None  # None: no attempt has ended yet
    hints: tuple[str, ...]


def job_efficiency(session: Session, principal: Principal, job_id: int) -> Efficiency:
    """The job's report, to whoever may read the job."""
    job = view_of(session, get_job(session, principal, job_id))
    records = session.scalars(
        select(UsageRecord).where(UsageRecord.job_id == job_id).order_by(UsageRecord.attempt)
    )
    return _report(job, list(records))


def least_efficient(
    session: Session, principal: Principal, *, project: str, limit: int = 10
) -> list[Efficiency]:
    """The project's finished jobs that wasted most (see the module's docstring), at most
    `limit` (1 to `MAX_LIMIT`); jobs of which nothing was measured are left out."""
    found = project_by_name(session, principal, project, action=Action.JOB_READ)
    stmt = (
        select(Job)
        .where(Job.project_id == found.id, Job.state.in_([s.value for s in TERMINAL]))
        .order_by(Job.id.desc())
        .limit(CANDIDATES)
    )
    jobs = views_of(session, session.scalars(stmt))
    records = _records_of(session, [job.id for job in jobs])
    reports = [_report(job, records[job.id]) for job in jobs]
    measured = [r for r in reports if r.overall is not None and r.overall.measured]
    return sorted(measured, key=_waste_order)[: max(1, min(limit, MAX_LIMIT))]


def _records_of(session: Session, job_ids: Sequence[int]) -> dict[int, list[UsageRecord]]:
    found: dict[int, list[UsageRecord]] = defaultdict(list)
    if job_ids:
        stmt = select(UsageRecord).where(UsageRecord.job_id.in_(job_ids))
        for record in session.scalars(stmt.order_by(UsageRecord.attempt)):
            found[record.job_id].append(record)
    return found


def _waste_order(found: Efficiency) -> tuple[float, float, float, int]:
    use = found.overall
    assert use is not None
    return (-use.idle_gpu_s, -use.idle_cpu_s, -use.unused_memory_mb_s, -found.job_id)


def _report(job: JobView, records: Sequence[UsageRecord]) -> Efficiency:
    """The report of a job from its usage records (one per ended attempt)."""
    asked_mb = job.memory_mb_per_node * job.nodes  # records made before 0010 kept none
    attempts = tuple(
        AttemptUse(r.attempt, r.started_at, r.ended_at, _use_of(r, asked_mb)) for r in records
    )
    overall = _overall([a.use for a in attempts]) if attempts else None
    hints = _hints(job, overall) if overall is not None else ()
    return Efficiency(
        job_id=job.id,
        name=job.name,
        project=job.project,
        owner=job.owner,
        state=job.state,
        time_limit_s=job.time_limit_s,
        attempts=attempts,
        overall=overall,
        hints=hints,
    )


def _use_of(record: UsageRecord, asked_mb: int) -> Use:
    wall = max(0.0, record.ended_at - record.started_at)
    gpus = record.gpus
    return Use(
        wall_s=wall,
        cpus=record.cpus,
        cpu_s=record.cpus * wall,
        cpu_time_s=record.cpu_time_s,
        memory_mb=record.memory_mb if record.memory_mb is not None else asked_mb,
        peak_rss_mb=record.peak_rss_mb,
        gpus=gpus,
        gpu_s=gpus * wall,
        gpu_utilisation_pct=record.gpu_utilisation_pct if gpus else None,
        peak_gpu_memory_mb=record.peak_gpu_memory_mb if gpus else None,
    )


def _overall(uses: Sequence[Use]) -> Use:
    """A whole job: sums of what adds up, the largest of what does not; a figure only when
    every attempt has it."""
    gpu_s = sum(u.gpu_s for u in uses)
    busy = _every(uses, lambda u: u.gpu_utilisation_pct)
    return Use(
        wall_s=sum(u.wall_s for u in uses),
        cpus=max(u.cpus for u in uses),
        cpu_s=sum(u.cpu_s for u in uses),
        cpu_time_s=_total(_every(uses, lambda u: u.cpu_time_s)),
        memory_mb=max(u.memory_mb for u in uses),
        peak_rss_mb=_largest(_every(uses, lambda u: u.peak_rss_mb)),
        gpus=max(u.gpus for u in uses),
        gpu_s=gpu_s,
        gpu_utilisation_pct=_weighted(busy, [u.gpu_s for u in uses], gpu_s),
        peak_gpu_memory_mb=_largest(_every(uses, lambda u: u.peak_gpu_memory_mb)),
    )


def _every(uses: Iterable[Use], figure: Callable[[Use], float | None]) -> list[float] | None:
    found = [figure(u) for u in uses]
    return None if any(f is None for f in found) else [f for f in found if f is not None]


def _total(found: list[float] | None) -> float | None:
    return None if found is None else sum(found)


def _largest(found: list[float] | None) -> float | None:
    return None if found is None else max(found)


def _weighted(found: list[float] | None, weights: list[float], total: float) -> float | None:
    if found is None:
        return None
    if total <= 0:
        return sum(found) / len(found)
    return sum(f * w for f, w in zip(found, weights, strict=True)) / total


def _pct(used: float | None, asked: float) -> float | None:
    return None if used is None or asked <= 0 else 100 * used / asked


# ---- hints -----------------------------------------------------------------------------------
def _hints(job: JobView, use: Use) -> tuple[str, ...]:
    if job.state != JobState.SUCCEEDED:
        return ()
    found = [_memory_hint(use)]
    if use.wall_s >= MIN_HINT_S:
        found += [_cpu_hint(use), _gpu_hint(use), _time_hint(job, use)]
    return tuple(hint for hint in found if hint is not None)


def _memory_hint(use: Use) -> str | None:
    peak = use.peak_rss_mb
    if peak is None or peak >= FAR_BELOW * use.memory_mb:
        return None
    suggested = _memory_suggestion(peak)
    if use.memory_mb - suggested < MIN_SAVING_MB:
        return None
    return (
        f"asked {_size(use.memory_mb)} of memory, used at most {_size(peak)}: "
        f"ask for {_size(suggested)}"
    )


def _memory_suggestion(peak_mb: float) -> int:
    """The peak with headroom, rounded up: to a whole GB from 1 GB, else to 256 MB."""
    wanted = peak_mb * HEADROOM
    step = 1024 if wanted > 1024 else 256
    return max(step, math.ceil(wanted / step) * step)


def _cpu_hint(use: Use) -> str | None:
    share = use.cpu_efficiency_pct
    if share is None or use.cpus <= 1 or share >= 100 * FAR_BELOW:
        return None
    busy = use.cpus * share / 100  # CPUs kept busy on average
    suggested = max(1, math.ceil(round(busy, 1)))
    return f"asked {use.cpus} CPUs, kept {busy:.1f} busy on average: ask for {suggested}"


def _gpu_hint(use: Use) -> str | None:
    busy = use.gpu_utilisation_pct
    if busy is None or use.gpus == 0 or busy >= 100 * FAR_BELOW:
        return None
    asked = f"{use.gpus} GPUs were" if use.gpus > 1 else "its GPU was"
    fewer = ", or ask for fewer" if use.gpus > 1 else ""
    return (
        f"{asked} busy {busy:.0f} % of the time on average: keep "
        f"{'them' if use.gpus > 1 else 'it'} fed (data loading, batch size){fewer}"
    )


def _time_hint(job: JobView, use: Use) -> str | None:
    """A limit far above its run: a shorter one lets the scheduler fit it in sooner."""
    if use.wall_s >= FAR_BELOW * job.time_limit_s:
        return None
    suggested = max(900, math.ceil(use.wall_s * HEADROOM / 900) * 900)  # quarter hours
    if suggested >= job.time_limit_s:
        return None
    return (
        f"asked a time limit of {_hours(job.time_limit_s)}, ran {_hours(use.wall_s)}: "
        f"a limit of {_hours(suggested)} starts sooner (backfill)"
    )


def _size(mb: float) -> str:
    if mb < 1024:
        return f"{mb:.0f} MB"
    return f"{mb / 1024:.1f}".removesuffix(".0") + " GB"


def _hours(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")
