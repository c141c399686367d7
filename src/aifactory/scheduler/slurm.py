"""`slurm`: what a facility runs today — Slurm's multifactor priority with its backfill.

A faithful emulation, not a strawman; docs/slurm-baseline.md gives every source. In short:

- Priority (Slurm `priority/multifactor`, doc "Multifactor Priority Plugin", weights from its
  configuration example): ``floor(W_fs·FS + W_age·AGE + W_js·JS + W_qos·QOS)`` with
  W_fs = 10000, W_age = 1000, W_js = 1000, W_qos = 0; ties by submit time, then job id.
- AGE = min(1, wait ÷ PriorityMaxAge), PriorityMaxAge = 7 days.
- JS (PriorityFavorSmall=NO) = (nodes ÷ facility nodes + GPUs ÷ facility GPUs) ÷ 2: GPUs stand
  in for the CPUs Slurm counts, as GPU sites bill them (TRESBillingWeights GRES/gpu).
- FS: Fair Tree (the default since Slurm 19.05) with one account per project: projects ranked by
  level fairshare LF = S ÷ U (S: share of the raw shares, U: share of decayed usage; LF = ∞
  without usage), FS = rank ÷ projects, ties sharing the higher rank. Usage is GPU-seconds
  with a 7-day half-life (PriorityDecayHalfLife), accrued while jobs run.
- QOS: the job's priority class ÷ the highest in the queue (the programme weight, W_qos).
- Scheduling: the main pass starts jobs in priority order and stops at the first that does not
  fit; backfill then walks up to `bf_max_job_test` (500) more jobs by priority and gives each the
  earliest start on the nodes' free-resource timeline built from running jobs' start + limit,
  starting it now if that does not overlap an earlier job's reservation, else reserving its
  whole nodes for its limit (a reservation for every tested job, not only the first), within
  `bf_window` (the docs advise the longest time limit; we use 7 days, our longest ladder value).

Simplifications (docs/slurm-baseline.md §5): priorities and backfill are recomputed at every
call instead of every 5 min / 30 s (a few seconds sooner than Slurm, so if anything kinder to
it); times are not rounded to `bf_resolution`; one partition, one QOS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aifactory.scheduler.decisions import Decision, Start
from aifactory.scheduler.profile import NodePlan, least_asks
from aifactory.scheduler.snapshot import PendingJob, ProjectView, Snapshot
from aifactory.scheduler.usage import WEEK_S


@dataclass(frozen=True, slots=True)
class SlurmKnobs:
    weight_fairshare: int = 10_000
    weight_age: int = 1_000
    weight_job_size: int = 1_000
    weight_qos: int = 0
    max_age_s: float = WEEK_S
    bf_max_job_test: int = 500
    bf_window_s: float = WEEK_S


def schedule_slurm(
    snapshot: Snapshot, knobs: SlurmKnobs, now: float, *, backfill: bool = True
) -> list[Decision]:
    queue = by_priority(snapshot, knobs, now)
    plan = NodePlan(snapshot, now, lambda job: job.started_at + job.time_limit_s)
    decisions: list[Decision] = []
    tested = 0
    blocked = False
    least = least_asks([(job.per_node.gpus, job.time_limit_s) for job in queue])
    for position, job in enumerate(queue):
        if blocked:
            tested += 1
            if tested > knobs.bf_max_job_test or not plan.any_open(*least[position]):
                break  # no job from here on could start now: the rest cannot change a thing
        slot = plan.earliest(job, job.time_limit_s)
        if slot is None:
            continue  # can never run here; it does not hold up the others
        if slot.start_at <= now:
            plan.start(job, slot.nodes, job.time_limit_s)
            decisions.append(Start(job.job_id, {node_id: job.per_node for node_id in slot.nodes}))
            continue
        if not backfill:
            break
        blocked = True
        if slot.start_at - now <= knobs.bf_window_s:
            plan.reserve(slot.nodes, slot.start_at, slot.start_at + job.time_limit_s)
    return decisions


def by_priority(snapshot: Snapshot, knobs: SlurmKnobs, now: float) -> list[PendingJob]:
    """The queue in Slurm's order: priority, then submit time, then job id."""
    fairshare = fair_tree(_projects(snapshot))
    nodes = sum(1 for n in snapshot.nodes if n.schedulable) or 1
    gpus = sum(n.capacity.gpus for n in snapshot.nodes if n.schedulable) or 1
    top_class = max((job.priority for job in snapshot.pending), default=0)

    w_fs, w_age, w_js, w_qos = (
        knobs.weight_fairshare,
        knobs.weight_age,
        knobs.weight_job_size,
        knobs.weight_qos,
    )

    def key(job: PendingJob) -> tuple[float, float, int]:
        age = min(1.0, max(0.0, now - job.submitted_at) / knobs.max_age_s)
        size = min(1.0, (job.nodes / nodes + job.per_node.gpus * job.nodes / gpus) / 2)
        qos = max(0.0, job.priority / top_class) if top_class > 0 else 0.0
        priority = math.floor(
            w_fs * fairshare.get(job.project, 1.0) + w_age * age + w_js * size + w_qos * qos
        )
        return (-priority, job.submitted_at, job.job_id)

    return sorted(snapshot.pending, key=key)


def _projects(snapshot: Snapshot) -> list[ProjectView]:
    """Every account Slurm would know: registered projects and any with jobs here."""
    names = set(snapshot.projects)
    names.update(job.project for job in snapshot.pending)
    names.update(job.project for job in snapshot.running)
    return [snapshot.project(name) for name in sorted(names)]


def fair_tree(projects: Sequence[ProjectView]) -> dict[str, float]:
    """Fair Tree's factor for projects that are accounts of one user each under root."""
    if not projects:
        return {}
    total_shares = sum(p.shares for p in projects) or 1.0
    total_usage = sum(p.usage for p in projects)

    def level_fairshare(p: ProjectView) -> float:
        share = p.shares / total_shares
        if share == 0:
            return 0.0
        used = p.usage / total_usage if total_usage > 0 else 0.0
        return math.inf if used == 0 else share / used

    ranked = sorted(projects, key=level_fairshare, reverse=True)
    count = len(ranked)
    factors: dict[str, float] = {}
    rank, previous = count, None
    for position, project in enumerate(ranked):
        level = level_fairshare(project)
        if level != previous:
            rank, previous = count - position, level
        factors[project.name] = rank / count
    return factors
