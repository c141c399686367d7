"""`fairshare`, the default: guaranteed quotas, fair-share order, learned-runtime backfill.

One round, in order:

1. **Reclaim.** A project's pending job that asks GPUs and fits inside its guaranteed quota
   (GPUs it holds plus the job's ≤ `quota_gpus`) goes first. If there is no room, the policy
   preempts *borrowed* GPUs for it: preemptible GPU jobs of other projects holding more than
   their own quota, and only as many as leave each such project at or above its quota — on
   each node the newest first, then the nodes whose victims lose the least work. The victims
   get a grace period to stop; until they have, their room is kept for the reclaiming job (and
   its project starts nothing else that would eat its quota), so it starts in the first round
   after they are gone. No loops: in-quota GPUs are never preempted and every preemption raises
   Σ min(held, quota) over projects, which is bounded by the sum of quotas.
2. **Starvation guard.** A job that has waited `starvation_after_s` is "starving": it goes
   ahead of every other (oldest first) and is promised the earliest start the running jobs'
   *time limits* allow, as a hard reservation that no later job may overlap unless it would
   end, by its own limit, before the reservation begins. The promise never slips from one
   round to the next, so the wait is bounded. At most `promises` starving jobs hold one, the
   first in line: each promise is laid after those before it on its nodes, so their cost grows
   with the square of their number (33,000 starving jobs took a minute a round); the next ones
   get theirs as those start, and meanwhile may start only where no promise stands.
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
from dataclasses import dataclass, field

from aifactory.domain.resources import Resources
from aifactory.scheduler import maintenance
from aifactory.scheduler.decisions import Decision, Preempt, Start
from aifactory.scheduler.estimates import expected_end
from aifactory.scheduler.placement import FreeIndex, can_host
from aifactory.scheduler.profile import NodePlan, least_asks
from aifactory.scheduler.snapshot import PendingJob, RunningJob, Snapshot

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class FairshareKnobs:
    # 72 h, not 24 h: starving jobs (mostly big gangs) go first at any cost to others, and on
    # the synthetic family (docs/scheduler.md) 24 h cost more average wait and Jain than it
    # saved in p99 wait; 6 h was worse still, 96 h began to lose p99.
    starvation_after_s: float = 72 * HOUR_S
    fairness_weight: float = 1.0
    reservations: int = 1
    promises: int = 256  # starving jobs that hold a hard reservation at once (the first in line)
    preemption_grace_s: float = 60.0  # SIGTERM → SIGKILL for a preempted job (executors, sim)
    # A gang waits for one network block if that lets it start within this many times its
    # estimated runtime of its first start across blocks (scheduler.topology).
    block_patience: float = 1.0


def schedule_fairshare(
    snapshot: Snapshot, knobs: FairshareKnobs, now: float, *, oracle: bool = False
) -> list[Decision]:
    runtimes = snapshot.runtimes
    plan = NodePlan(snapshot, now, lambda job: expected_end(job, now, runtimes))
    decisions: list[Decision] = []
    reclaim = Reclaim() if oracle else _reclaim(snapshot, plan, decisions)
    queue = order(snapshot, knobs, now, oracle=oracle, handled=reclaim.handled)
    soft_left = knobs.reservations
    promises_left = knobs.promises
    strict: NodePlan | None = None  # by time limits: where starving jobs' promises are kept
    least = least_asks([(job.per_node.gpus, estimate) for job, estimate, _ in queue])
    for position, (job, estimate, starving) in enumerate(queue):
        if job.project in reclaim.waiting:
            continue  # its room is being reclaimed: its other jobs must not eat its quota
        if starving and promises_left > 0:
            promises_left -= 1
            strict = strict or _strict_plan(snapshot, plan, reclaim)
            _guard(job, estimate, plan, strict, decisions)
            continue
        if soft_left == 0:  # from here on only starts now matter
            if not plan.any_open(*least[position]):
                break
            if not plan.room_now(job):
                continue
        patience = knobs.block_patience * estimate
        slot = plan.earliest(job, estimate, job.time_limit_s, patience=patience)
        if slot is None:
            continue
        if slot.start_at <= now:
            plan.start(job, slot.nodes, estimate)
            decisions.append(Start(job.job_id, {n: job.per_node for n in slot.nodes}))
        elif soft_left > 0:
            soft_left -= 1
            plan.reserve(slot.nodes, slot.start_at, slot.start_at + estimate)
    return decisions


def _strict_plan(snapshot: Snapshot, plan: NodePlan, reclaim: Reclaim) -> NodePlan:
    """The facility by time limits, with this round's starts and reservations so far."""
    strict = NodePlan(snapshot, plan.now, lambda run: run.started_at + run.time_limit_s)
    for job, nodes in reclaim.started:
        strict.start(job, nodes, job.time_limit_s)
    for node_id, begin, end, hard in plan.reserved:  # maintenance it holds already
        strict.reserve((node_id,), begin, end, hard=hard)
    return strict


def _guard(
    job: PendingJob,
    estimate: float,
    plan: NodePlan,
    strict: NodePlan,
    decisions: list[Decision],
) -> None:
    """Start a starving job, or promise it the earliest start running jobs' *limits* allow.

    The promise is a hard reservation: a later job may precede it on its nodes only if it
    ends by its own limit first. So the nodes are free by the promised time, and the next
    round finds a promise no later: a starving job waits at most until the jobs running when
    it began starving reach their limits (plus those of starving jobs ahead of it).
    """
    slot = strict.earliest(job, job.time_limit_s)
    if slot is None:
        return
    if slot.start_at <= plan.now:
        plan.start(job, slot.nodes, estimate)
        strict.start(job, slot.nodes, job.time_limit_s)
        decisions.append(Start(job.job_id, {n: job.per_node for n in slot.nodes}))
        return
    plan.reserve(slot.nodes, slot.start_at, slot.start_at + estimate, hard=True)
    strict.reserve(slot.nodes, slot.start_at, slot.start_at + job.time_limit_s, hard=True)


# ---- 1. reclaim guaranteed quotas ----------------------------------------------------------
@dataclass
class Reclaim:
    """What reclaiming did this round."""

    handled: set[int] = field(default_factory=set)  # in-quota jobs started or waiting for room
    started: list[tuple[PendingJob, tuple[str, ...]]] = field(default_factory=list)
    waiting: set[str] = field(default_factory=set)  # projects waiting for reclaimed room


def _reclaim(snapshot: Snapshot, plan: NodePlan, decisions: list[Decision]) -> Reclaim:
    """Start, or make room for, jobs that fit inside their project's guaranteed quota."""
    done = Reclaim()
    quotas = {name: p.quota_gpus for name, p in snapshot.projects.items() if p.quota_gpus > 0}
    if not quotas:
        return done
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
        (job for job in snapshot.pending if job.project in quotas and job.gpus > 0),
        key=lambda job: (job.submitted_at, job.job_id),
    )
    taken: set[int] = set()
    for job in waiting:
        if held[job.project] + job.gpus > quotas[job.project]:
            continue
        barred = maintenance.barred(snapshot.maintenance, plan.now, job.time_limit_s)
        placement = FreeIndex(dict(future)).place(job, plan.kinds, barred)
        victims: list[RunningJob] = []
        if placement is None:
            victims = _victims(job, snapshot, plan, future, held, quotas, taken, barred)
            if not victims:
                continue
            for victim in victims:
                _give(future, victim)
                held[victim.project] -= victim.gpus
                taken.add(victim.job_id)
                decisions.append(Preempt(victim.job_id, f"reclaimed for project {job.project}"))
            placement = FreeIndex(dict(future)).place(job, plan.kinds, barred)
            assert placement is not None  # _victims returns only a set that makes room
        held[job.project] += job.gpus
        done.handled.add(job.job_id)
        for node_id, part in placement.items():
            future[node_id] = future[node_id] - part
        nodes = tuple(sorted(placement))
        if not victims and all(job.per_node <= plan.free[n] for n in nodes):
            plan.start(job, nodes, job.time_limit_s)
            done.started.append((job, nodes))
            decisions.append(Start(job.job_id, dict(placement)))
        else:  # the room coming free is this job's (up to any maintenance): nobody else's
            for node_id in nodes:
                plan.reserve((node_id,), plan.now, plan.next_window(node_id), hard=True)
            done.waiting.add(job.project)
    return done


def _give(free: dict[str, Resources], run: RunningJob) -> None:
    for node_id, part in run.placement.items():
        if node_id in free:
            free[node_id] = free[node_id] + part


def _victims(
    job: PendingJob,
    snapshot: Snapshot,
    plan: NodePlan,
    future: Mapping[str, Resources],
    held: Mapping[str, int],
    quotas: Mapping[str, int],
    taken: set[int],
    barred: frozenset[str],
) -> list[RunningJob]:
    """Borrowed jobs to preempt so that `job` fits: on each node the newest borrowers until
    the job fits there, then the nodes whose victims lose the least work; [] if no lawful
    set makes room. Only GPUs a project holds beyond its own quota count as borrowed."""
    spare = {p: held[p] - quotas.get(p, 0) for p in held}
    on_node: dict[str, list[RunningJob]] = defaultdict(list)
    for run in snapshot.running:
        lawful = run.preemptible and not run.stopping and run.gpus > 0
        if lawful and run.job_id not in taken and run.project != job.project:
            for node_id in run.placement:
                on_node[node_id].append(run)
    options: list[Option] = []
    for node_id, room in future.items():
        if node_id in barred:
            continue
        if not job.per_node <= plan.capacity[node_id] or not can_host(job, plan.kinds[node_id]):
            continue
        budget, here = dict(spare), []
        for run in sorted(on_node[node_id], key=lambda r: (-r.started_at, -r.job_id)):
            if job.per_node <= room:
                break
            if run.gpus <= budget.get(run.project, 0):
                budget[run.project] -= run.gpus
                here.append(run)
                room = room + run.placement[node_id]
        if job.per_node <= room:
            lost = sum(run.gpus * max(0.0, plan.now - run.started_at) for run in here)
            options.append((lost, node_id, here))
    options.sort(key=lambda option: (option[0], option[1]))
    if not (job.one_block and plan.topology):
        found = _pick(options, spare, job.nodes)
        return found[1] if found is not None else []
    # A gang that must stay in one block: the block where making room costs least.
    by_block: dict[str | None, list[Option]] = defaultdict(list)
    for option in options:
        by_block[plan.kinds[option[1]].block].append(option)
    picks = [p for group in by_block.values() if (p := _pick(group, spare, job.nodes))]
    return min(picks, key=lambda pick: pick[0])[1] if picks else []


Option = tuple[float, str, list[RunningJob]]  # work lost, node, the victims that free it


def _pick(
    options: list[Option], spare: Mapping[str, int], count: int
) -> tuple[float, list[RunningJob]] | None:
    """The cheapest `count` nodes (in the options' order) whose victims the borrowers' spare
    GPUs allow, with the work they lose; None if there are not that many."""
    budget, nodes, lost = dict(spare), 0, 0.0
    chosen: dict[int, RunningJob] = {}
    for cost, _, here in options:
        new = [run for run in here if run.job_id not in chosen]
        need: dict[str, int] = defaultdict(int)
        for run in new:
            need[run.project] += run.gpus
        if any(gpus > budget.get(project, 0) for project, gpus in need.items()):
            continue
        for project, gpus in need.items():
            budget[project] -= gpus
        chosen.update((run.job_id, run) for run in new)
        nodes, lost = nodes + 1, lost + cost
        if nodes == count:
            return lost, list(chosen.values())
    return None


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
