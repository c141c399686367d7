"""`fairshare`, the default: guaranteed quotas, fair-share order, learned-runtime backfill.

One round, in order:

1. **Reclaim.** A project's pending job that fits inside its guaranteed quota (GPUs it holds
   plus the job's ≤ `quota_gpus`) goes first. If there is no room, the policy preempts
   *borrowed* GPUs for it: preemptible jobs of projects holding more than their own quota, and
   only as many as leave each such project at or above its quota, newest first (least work
   lost). The victims get a grace period to stop; until they have, their room is kept for the
   reclaiming job, which therefore starts in the first round after they are gone. No loops:
   in-quota GPUs are never preempted and every preemption raises Σ min(held, quota) over
   projects, which is bounded by the sum of quotas.
2. **Starvation guard.** A job that has waited `starvation_after_s` is "starving": it goes
   ahead of every other (oldest first) and gets a hard reservation that no later job may
   overlap unless it would end, by its *time limit*, before the reservation begins.
3. **Fair-share order.** Everyone else is ordered by expected size, smallest first: estimated
   runtime (learned from history; see estimates.py) × GPUs, scaled by how far the project is
   over its fair share of recent use (decayed usage share ÷ entitled share among the projects
   that want GPUs now, weighted by `fairness_weight`, a factor 2^(w·(ratio − 1))) and by the
   job's priority class (−1000…1000: ×2^(−priority/250)). Small jobs of light users first is
   what cuts average waits the most; the penalty keeps heavy users from crowding others out.
4. **Backfill and packing.** Jobs start in that order wherever they fit, best fit first (the
   fullest node that takes them, gangs on whole sets of nodes at once); the first `reservations`
   jobs that do not fit reserve room at their estimated earliest start, and later jobs may use
   that room only if, by their estimate, they end before it is needed.

Without runtime estimates in the snapshot it falls back to user time limits. `oracle` is the
same policy handed true runtimes by the simulator: no quotas' preemption, no fairness penalty,
no guard — the practical floor for average waits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from aifactory.domain.resources import Resources
from aifactory.scheduler.decisions import Decision, Preempt, Start
from aifactory.scheduler.estimates import expected_end
from aifactory.scheduler.placement import FreeIndex
from aifactory.scheduler.profile import NodePlan, least_asks
from aifactory.scheduler.snapshot import PendingJob, RunningJob, Snapshot

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class FairshareKnobs:
    starvation_after_s: float = 24 * HOUR_S
    fairness_weight: float = 1.0
    reservations: int = 1
    preemption_grace_s: float = 60.0  # SIGTERM → SIGKILL for a preempted job (executors, sim)


def schedule_fairshare(
    snapshot: Snapshot, knobs: FairshareKnobs, now: float, *, oracle: bool = False
) -> list[Decision]:
    runtimes = snapshot.runtimes
    plan = NodePlan(snapshot, now, lambda job: expected_end(job, now, runtimes))
    decisions: list[Decision] = []
    reclaiming = [] if oracle else _reclaim(snapshot, plan, decisions)
    handled = {job.job_id for job in reclaiming}
    queue = order(snapshot, knobs, now, oracle=oracle, handled=handled)
    soft_left = knobs.reservations
    least = least_asks([(job.per_node.gpus, estimate) for job, estimate, _ in queue])
    for position, (job, estimate, starving) in enumerate(queue):
        if not starving and soft_left == 0:  # from here on only starts now matter
            if not plan.any_open(*least[position]):
                break
            if not plan.room_now(job):
                continue
        slot = plan.earliest(job, estimate, job.time_limit_s)
        if slot is None:
            continue
        if slot.start_at <= now:
            plan.start(job, slot.nodes, estimate)
            decisions.append(Start(job.job_id, {n: job.per_node for n in slot.nodes}))
            continue
        if starving:
            plan.reserve(slot.nodes, slot.start_at, slot.start_at + estimate, hard=True)
        elif soft_left > 0:
            soft_left -= 1
            plan.reserve(slot.nodes, slot.start_at, slot.start_at + estimate)
    return decisions


# ---- 1. reclaim guaranteed quotas ----------------------------------------------------------
def _reclaim(snapshot: Snapshot, plan: NodePlan, decisions: list[Decision]) -> list[PendingJob]:
    """Start, or make room for, in-quota jobs; returns those handled (started or waiting)."""
    quotas = {name: p.quota_gpus for name, p in snapshot.projects.items() if p.quota_gpus > 0}
    if not quotas:
        return []
    held: dict[str, int] = defaultdict(int)
    for run in snapshot.running:
        if not run.stopping:
            held[run.project] += run.gpus
    # Room once every stopping job is gone; what in-quota jobs claim is taken from it.
    future = dict(plan.free)
    for run in snapshot.running:
        if run.stopping:
            _give(future, run)
    waiting = sorted(
        (job for job in snapshot.pending if job.project in quotas),
        key=lambda job: (job.submitted_at, job.job_id),
    )
    handled: list[PendingJob] = []
    for job in waiting:
        if held[job.project] + job.gpus > quotas[job.project]:
            continue
        placement = FreeIndex(dict(future)).place(job, plan.models)
        victims: list[RunningJob] = []
        if placement is None:
            victims = _victims(job, snapshot, plan.models, future, held, quotas)
            if not victims:
                continue
            for victim in victims:
                _give(future, victim)
                held[victim.project] -= victim.gpus
                decisions.append(Preempt(victim.job_id, f"reclaimed for project {job.project}"))
            placement = FreeIndex(dict(future)).place(job, plan.models)
            assert placement is not None  # _victims returns only a set that makes room
        held[job.project] += job.gpus
        handled.append(job)
        for node_id, part in placement.items():
            future[node_id] = future[node_id] - part
        nodes = tuple(sorted(placement))
        if not victims and all(job.per_node <= plan.free[n] for n in nodes):
            plan.start(job, nodes, job.time_limit_s)
            decisions.append(Start(job.job_id, dict(placement)))
        else:  # the room coming free is this job's: nobody else may start there
            plan.reserve(nodes, plan.now, math.inf, hard=True)
    return handled


def _give(free: dict[str, Resources], run: RunningJob) -> None:
    for node_id, part in run.placement.items():
        if node_id in free:
            free[node_id] = free[node_id] + part


def _victims(
    job: PendingJob,
    snapshot: Snapshot,
    models: Mapping[str, str | None],
    future: Mapping[str, Resources],
    held: Mapping[str, int],
    quotas: Mapping[str, int],
) -> list[RunningJob]:
    """The newest borrowed jobs whose room lets `job` start, none it does not need; [] if
    even all borrowed room would not do."""
    borrowed = dict(held)
    candidates = sorted(
        (run for run in snapshot.running if run.preemptible and not run.stopping),
        key=lambda run: (-run.started_at, -run.job_id),
    )
    chosen: list[RunningJob] = []
    for run in candidates:
        if borrowed.get(run.project, 0) - run.gpus < quotas.get(run.project, 0):
            continue  # that would cut into its own quota
        borrowed[run.project] -= run.gpus
        chosen.append(run)
        if _fits_without(job, models, future, chosen):
            for spare in sorted(chosen, key=lambda r: (r.started_at, r.job_id)):
                trial = [v for v in chosen if v is not spare]
                if _fits_without(job, models, future, trial):
                    chosen = trial
            return chosen
    return []


def _fits_without(
    job: PendingJob,
    models: Mapping[str, str | None],
    future: Mapping[str, Resources],
    victims: list[RunningJob],
) -> bool:
    free = dict(future)
    for victim in victims:
        _give(free, victim)
    return FreeIndex(free).place(job, models) is not None


# ---- 2 + 3. the order ----------------------------------------------------------------------
# A job in the queue, with its runtime estimate (learned, or its limit without history) and
# whether it starves. A plain tuple: the queue is rebuilt every round, thousands long.
Queued = tuple[PendingJob, float, bool]


def order(
    snapshot: Snapshot,
    knobs: FairshareKnobs,
    now: float,
    *,
    oracle: bool = False,
    handled: frozenset[int] | set[int] = frozenset(),
) -> list[Queued]:
    """The queue after reclaim: each job with its runtime estimate and whether it starves."""
    runtimes = snapshot.runtimes
    penalty = {} if oracle else overuse_penalty(snapshot, knobs.fairness_weight)
    starving_since = -math.inf if oracle else now - knobs.starvation_after_s
    keyed: list[tuple[tuple[int, float, int], Queued]] = []
    for job in snapshot.pending:
        if job.job_id in handled:
            continue
        estimate = job.time_limit_s if runtimes is None else runtimes.runtime(job)
        if job.submitted_at <= starving_since:
            keyed.append(((0, job.submitted_at, job.job_id), (job, estimate, True)))
            continue
        size = estimate * (job.gpus or 1) * penalty.get(job.project, 1.0)
        if job.priority:
            size *= math.pow(2.0, -job.priority / 250)
        keyed.append(((1, size, job.job_id), (job, estimate, False)))
    keyed.sort(key=lambda item: item[0])
    return [queued for _, queued in keyed]


def overuse_penalty(snapshot: Snapshot, weight: float) -> dict[str, float]:
    """2^(w·(used share ÷ entitled share − 1)) for each project that wants GPUs now."""
    wanting = {job.project for job in snapshot.pending}
    if weight == 0 or len(wanting) < 2:
        return {}
    active = wanting | {run.project for run in snapshot.running}
    views = [snapshot.project(name) for name in active]
    shares = sum(v.shares for v in views)
    usage = sum(v.usage for v in views)
    if shares <= 0 or usage <= 0:
        return {}
    penalty = {}
    for view in views:
        entitled = view.shares / shares
        ratio = (view.usage / usage) / entitled if entitled > 0 else math.inf
        penalty[view.name] = math.pow(2.0, weight * (min(ratio, 16.0) - 1.0))
    return penalty
