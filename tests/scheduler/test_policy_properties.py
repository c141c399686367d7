"""Invariants of the `slurm`, `fairshare` and `oracle` policies over random facilities.

The facilities are those of test_properties.py with what these policies also read: projects
with shares, decayed usage and guaranteed quotas; running jobs of several projects, some
preemptible, some already stopping; pending jobs with users, priority classes and
preemptibility; runtimes learned from a short history (and, for `oracle`, the true ones).

- safety: what runs (stopping jobs included) plus what starts fits every node; a Start places
  a whole gang on schedulable nodes of the right model, once per pending job; a Preempt names
  a running, preemptible job not already stopping; `slurm` and `oracle` never preempt;
- determinism: the same snapshot gives the same decisions, whatever the order of its tuples;
- reclaim (`fairshare`): victims are borrowed GPUs only, from projects holding more than their
  quota, each preempted once, and no project is taken below its quota; the oldest in-quota job
  that some lawful set of victims would make room for starts in this round or, once its
  victims are gone, in the next;
- no preemption loops (`fairshare`): rounds in which nothing ends but the victims (which queue
  again) reach a fixed point, with Σ min(held, quota) never falling and no more preemptions
  than jobs running at first.

Where `fairshare` breaks a property today, the test is an expected failure (strict) that
always runs a minimal example of the bug first, and a companion property checks the rest on
facilities the bug cannot reach (quota-less borrowers, every job asking for GPUs).

A project "holds" the GPUs of its running jobs that are not stopping, as the policy counts.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler import (
    NAMED,
    Decision,
    PendingJob,
    Policy,
    Preempt,
    RunningJob,
    Snapshot,
    Start,
    schedule,
)
from aifactory.scheduler.estimates import RuntimeHistory
from aifactory.scheduler.placement import place
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.scheduler.snapshot import ProjectView
from tests.scheduler.builders import a_job, a_node, running, snapshot
from tests.scheduler.test_properties import (
    LIMITS,
    _assert_no_over_commit,
    _assert_whole_gangs,
    _shapes,
    snapshots,
)

SLURM, FAIRSHARE, ORACLE = NAMED["slurm"], NAMED["fairshare"], SIM_ONLY["oracle"]
GRACE_S = FAIRSHARE.fairshare.preemption_grace_s
PROPERTIES = settings(max_examples=150, deadline=None)

PROJECTS = ("r", "p", "q")  # r borrows most: it has no pending jobs unless a tag moves one there
USERS = ("u1", "u2")
# A running job's project, preemptible, stopping (seldom), user.
RUNNING_TAGS = _shapes(PROJECTS, (True, False), (False, False, False, True), USERS)
# A pending job's preemptible, priority class, user, project (None: keep the one drawn).
PENDING_TAGS = _shapes((False, True), (0, 0, 500, -500), USERS, (None, None, "r"))
# A project's shares, quota (GPUs) and decayed usage (GPU-seconds).
PROJECT_VIEW = _shapes((1.0, 2.0, 0.5), (0, 2, 4, 8, 16), (0.0, 1e4, 1e6))
RUNTIMES = (1.0, 20.0, 90.0, 400.0, 5000.0)
HISTORY = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(PROJECTS),
        st.sampled_from(LIMITS),
        st.sampled_from(RUNTIMES),
    ),
    max_size=4,
)


@dataclass(frozen=True, slots=True)
class TrueRuntimes:
    """What the simulator hands `oracle`: each job's true runtime, never past its limit."""

    durations: Mapping[int, float]

    def runtime(self, job: PendingJob | RunningJob) -> float:
        return min(self.durations.get(job.job_id, job.time_limit_s), job.time_limit_s)


@dataclass(frozen=True, slots=True)
class Case:
    snap: Snapshot  # runtimes: learned (or none)
    now: float
    truth: TrueRuntimes

    def for_policy(self, policy: Policy) -> Snapshot:
        return replace(self.snap, runtimes=self.truth) if policy is ORACLE else self.snap


def _history(records: list[tuple[str, str, float, float]]) -> RuntimeHistory:
    history = RuntimeHistory()
    for user, project, limit, runtime in records:
        history.record(user, project, limit, runtime)
    return history


@st.composite
def cases(draw: st.DrawFn, busy: bool = False) -> Case:
    base, now = draw(snapshots(busy=busy))
    running: list[RunningJob] = []
    for run in base.running:
        project, preemptible, stopping, user = draw(RUNNING_TAGS)
        running.append(
            replace(run, project=project, preemptible=preemptible, stopping=stopping, user=user)
        )
    pending: list[PendingJob] = []
    for job in base.pending:
        preemptible, priority, user, project = draw(PENDING_TAGS)
        pending.append(
            replace(
                job,
                preemptible=preemptible,
                priority=priority,
                user=user,
                project=project or job.project,
            )
        )
    projects = {
        name: ProjectView(name, *draw(PROJECT_VIEW)) for name in PROJECTS if draw(st.booleans())
    }
    runtimes = draw(st.none() | HISTORY.map(_history))
    ids = [run.job_id for run in running] + [job.job_id for job in pending]
    durations = draw(st.lists(st.sampled_from(RUNTIMES), min_size=len(ids), max_size=len(ids)))
    snap = replace(
        base,
        running=tuple(running),
        pending=tuple(pending),
        projects=MappingProxyType(projects),
        runtimes=runtimes,
    )
    return Case(snap, now, TrueRuntimes(dict(zip(ids, durations, strict=True))))


# ---- helpers --------------------------------------------------------------------------------


def _starts(decisions: Sequence[Decision]) -> list[Start]:
    return [d for d in decisions if isinstance(d, Start)]


def _victims(snap: Snapshot, decisions: Sequence[Decision]) -> list[RunningJob]:
    by_id = {run.job_id: run for run in snap.running}
    return [by_id[d.job_id] for d in decisions if isinstance(d, Preempt)]


def _held(snap: Snapshot) -> Counter[str]:
    held: Counter[str] = Counter()
    for run in snap.running:
        if not run.stopping:
            held[run.project] += run.gpus
    return held


def _guaranteed(snap: Snapshot) -> int:
    """Σ over projects of min(held, quota): the GPUs projects hold within their quotas."""
    held = _held(snap)
    return sum(min(held[name], view.quota_gpus) for name, view in snap.projects.items())


def _requeued(run: RunningJob) -> PendingJob:
    """A preempted job waiting again with its own ask (the widest slice it held per node)."""
    slices = list(run.placement.values()) or [Resources()]
    per_node = Resources(
        max(s.gpus for s in slices), max(s.cpus for s in slices), max(s.memory_mb for s in slices)
    )
    return PendingJob(
        job_id=run.job_id,
        project=run.project,
        submitted_at=run.started_at,
        per_node=per_node,
        nodes=len(slices),
        time_limit_s=run.time_limit_s,
        preemptible=run.preemptible,
        user=run.user,
    )


def _after(
    snap: Snapshot,
    decisions: Sequence[Decision],
    now: float,
    asks: Mapping[int, PendingJob] = MappingProxyType({}),
) -> Snapshot:
    """The facility one round later, when nothing has ended but what was asked to stop: the
    stopping jobs and this round's victims are gone, the started jobs run. Victims wait again
    as the simulator requeues them: with their original ask (`asks`, by job id) and submit
    time where known."""
    victims = {run.job_id for run in _victims(snap, decisions)}
    starts = {start.job_id: start for start in _starts(decisions)}
    running = [r for r in snap.running if not r.stopping and r.job_id not in victims]
    pending = [j for j in snap.pending if j.job_id not in starts]
    for job in snap.pending:
        start = starts.get(job.job_id)
        if start is not None:
            running.append(
                RunningJob(
                    job.job_id,
                    job.project,
                    start.placement,
                    now,
                    job.time_limit_s,
                    user=job.user,
                    preemptible=job.preemptible,
                )
            )
    pending.extend(
        asks.get(run.job_id) or _requeued(run) for run in snap.running if run.job_id in victims
    )
    return replace(snap, running=tuple(running), pending=tuple(pending))


def _assert_lawful_preemptions(snap: Snapshot, decisions: Sequence[Decision]) -> None:
    """Victims run, are preemptible and not yet stopping."""
    preempted = [d.job_id for d in decisions if isinstance(d, Preempt)]
    by_id = {run.job_id: run for run in snap.running}
    for job_id in preempted:
        assert job_id in by_id, f"preempts {job_id}, which does not run"
        assert by_id[job_id].preemptible, f"preempts non-preemptible {by_id[job_id]}"
        assert not by_id[job_id].stopping, f"preempts {job_id} again while it stops"


def _assert_borrowed_only(snap: Snapshot, victims: list[RunningJob]) -> None:
    """Victims hold GPUs their project borrowed; no project is cut below its quota."""
    held = _held(snap)
    taken: Counter[str] = Counter()
    for victim in victims:
        quota = snap.project(victim.project).quota_gpus
        assert victim.gpus == 0 or held[victim.project] > quota, (victim, held, quota)
        taken[victim.project] += victim.gpus
    for name, gpus in taken.items():
        quota = snap.project(name).quota_gpus
        assert held[name] - gpus >= min(held[name], quota), (name, held[name], gpus, quota)


def _oldest_in_quota(snap: Snapshot) -> PendingJob | None:
    """The first pending job, in submit order, that fits in its project's unused quota (quotas
    are GPUs: a job asking none is never reclaimed for)."""
    held = _held(snap)
    in_quota = [
        job
        for job in snap.pending
        if job.gpus > 0
        and (quota := snap.project(job.project).quota_gpus) > 0
        and held[job.project] + job.gpus <= quota
    ]
    return min(in_quota, key=lambda job: (job.submitted_at, job.job_id), default=None)


def _reclaimable(snap: Snapshot, job: PendingJob) -> bool:
    """Would `job` fit once the stopping jobs and some lawful set of victims were gone?

    Lawful victims: running, preemptible, not stopping, holding GPUs (quotas guarantee GPUs:
    a CPU-only job borrows none, so it is never preempted to make room), and leaving each of
    their projects at or above its quota. Every subset is tried (the snapshots are small).
    """
    held = _held(snap)
    models = snap.kinds()
    room = snap.count_free()
    for run in snap.running:
        if run.stopping:
            _give(room, run)
    candidates = [
        run for run in snap.running if run.preemptible and not run.stopping and run.gpus > 0
    ]
    for size in range(len(candidates) + 1):
        for victims in itertools.combinations(candidates, size):
            taken: Counter[str] = Counter()
            for victim in victims:
                taken[victim.project] += victim.gpus
            if any(held[p] - t < snap.project(p).quota_gpus for p, t in taken.items()):
                continue
            free = dict(room)
            for victim in victims:
                _give(free, victim)
            if place(job, free, models) is not None:
                return True
    return False


def _give(free: dict[str, Resources], run: RunningJob) -> None:
    for node_id, part in run.placement.items():
        if node_id in free:
            free[node_id] = free[node_id] + part


# ---- safety ---------------------------------------------------------------------------------


@PROPERTIES
@given(cases())
def test_decisions_never_over_commit_and_preempt_only_lawfully(case: Case) -> None:
    for policy in (SLURM, FAIRSHARE, ORACLE):
        snap = case.for_policy(policy)
        decisions = schedule(snap, policy, case.now)
        starts = _starts(decisions)
        _assert_no_over_commit(snap, starts, case.now)
        _assert_whole_gangs(snap, starts)
        _assert_lawful_preemptions(snap, decisions)
        victims = _victims(snap, decisions)
        if policy is FAIRSHARE:
            _assert_borrowed_only(snap, victims)
            if victims:
                event("fairshare preempts")
        else:
            assert victims == [], f"{policy.name} preempts {victims}"


# ---- determinism ----------------------------------------------------------------------------


@PROPERTIES
@given(cases(), st.randoms(use_true_random=False))
def test_same_snapshot_same_decisions_in_any_order(case: Case, rnd: random.Random) -> None:
    for policy in (SLURM, FAIRSHARE, ORACLE):
        snap = case.for_policy(policy)
        pending, running, nodes = list(snap.pending), list(snap.running), list(snap.nodes)
        rnd.shuffle(pending)
        rnd.shuffle(running)
        rnd.shuffle(nodes)
        projects = dict(reversed(list(snap.projects.items())))
        shuffled = replace(
            snap,
            nodes=tuple(nodes),
            running=tuple(running),
            pending=tuple(pending),
            projects=MappingProxyType(projects),
        )
        first = schedule(snap, policy, case.now)
        assert schedule(snap, policy, case.now) == first
        assert schedule(shuffled, policy, case.now) == first, policy.name
        assert schedule(replace(snap, pending=snap.pending[::-1]), policy, case.now) == first
        assert schedule(replace(snap, running=snap.running[::-1]), policy, case.now) == first


# ---- fairshare: quota reclaim ---------------------------------------------------------------


def _quota_less_borrowers(case: Case) -> Case:
    """The same facility with every preemptible running job lent to `r`, which has no quota,
    quotas for `p` and `q`, and every job asking for at least one GPU: only `r` borrows, and
    any set of its jobs is a lawful choice of victims (a search cannot take a wrong turn)."""
    running = tuple(
        replace(run, project="r")
        if run.preemptible and run.gpus
        else replace(run, preemptible=False)
        for run in case.snap.running
    )
    pending = tuple(
        replace(job, per_node=replace(job.per_node, gpus=max(1, job.per_node.gpus)))
        for job in case.snap.pending
    )
    projects = {
        name: replace(
            case.snap.project(name), quota_gpus=max(2, case.snap.project(name).quota_gpus)
        )
        for name in ("p", "q")
    }
    snap = replace(case.snap, running=running, pending=pending, projects=MappingProxyType(projects))
    return replace(case, snap=snap)


def _case(snap: Snapshot, now: float) -> Case:
    return Case(snap, now, TrueRuntimes({}))


def _preemptible(run: RunningJob) -> RunningJob:
    return replace(run, preemptible=True)


def _quotas(snap: Snapshot, **quotas: int) -> Snapshot:
    views = {name: ProjectView(name, quota_gpus=gpus) for name, gpus in quotas.items()}
    return replace(snap, projects=MappingProxyType(views))


# q holds 16 GPUs on a quota of 8. Taking its newest preemptible job (4 GPUs on n2, next to a
# job that cannot be preempted) makes no room for p's 8-GPU job and leaves q at 12, so the walk
# skips q's older whole-node job (that would leave 4 < 8) and gives up; taking that one alone
# is lawful (q keeps 8) and frees n1. p never gets its quota while q runs.
GREEDY_MISSES_A_LAWFUL_VICTIM = _case(
    _quotas(
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                _preemptible(running(100, {"n1": 8}, started_at=0, project="q")),
                _preemptible(running(101, {"n2": 4}, started_at=10, project="q")),
                running(102, {"n2": 4}, started_at=0, project="q"),
            ],
            pending=[a_job(1, "p").gpus(8)],
        ),
        p=8,
        q=8,
    ),
    now=100,
)
# r borrows n1 (8 GPUs, preemptible) and most of n2. p's 8-GPU job is within p's quota of 8:
# r's job is preempted for it and n1 kept. In the same round p's own 1-GPU job starts on n2's
# last GPU, so next round p (holding 1) no longer has room in its quota for the 8-GPU job, which
# falls back into the ordinary queue, where r's 1-GPU job takes the reclaimed node first. p
# ends holding 1 GPU of its 8 and r's preemption was for nothing.
RECLAIMED_ROOM_GOES_TO_A_BORROWER = _case(
    _quotas(
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                _preemptible(running(100, {"n1": 8}, project="r")),
                running(101, {"n2": 7}, project="r"),
            ],
            pending=[
                a_job(1, "p").gpus(8).submitted(0),
                a_job(2, "p").limit(60).submitted(1),
                a_job(3, "r").limit(60).submitted(2),
            ],
        ),
        p=8,
    ),
    now=100,
)


@PROPERTIES
@example(GREEDY_MISSES_A_LAWFUL_VICTIM)
@example(RECLAIMED_ROOM_GOES_TO_A_BORROWER)
@given(cases(busy=True))
def test_an_in_quota_job_gets_its_room_within_a_round(case: Case) -> None:
    """The oldest in-quota job that some lawful set of victims would make room for starts in
    this round or, the victims gone, the next; unless its project by then holds, within its
    quota, the GPUs that job asked for."""
    _assert_reclaimed_within_a_round(case, project_wise=True)


@PROPERTIES
@given(cases(busy=True).map(_quota_less_borrowers))
def test_with_quota_less_borrowers_the_room_is_kept_for_the_in_quota_job(case: Case) -> None:
    _assert_reclaimed_within_a_round(case, project_wise=False)


def _assert_reclaimed_within_a_round(case: Case, *, project_wise: bool) -> None:
    snap, now = case.snap, case.now
    decisions = schedule(snap, FAIRSHARE, now)
    job = _oldest_in_quota(snap)
    if job is None or not _reclaimable(snap, job):
        return
    if job.job_id in {s.job_id for s in _starts(decisions)}:
        event("oldest in-quota job: started at once")
        return
    event("oldest in-quota job: waits for its room")
    later = _after(snap, decisions, now)
    again = schedule(later, FAIRSHARE, now + GRACE_S)
    started = job.job_id in {s.job_id for s in _starts(again)}
    quota = snap.project(job.project).quota_gpus
    if _held(later)[job.project] + job.gpus <= quota:
        assert started, ("still in quota, not started", job, decisions, again)
    elif project_wise:
        event("its project went over its quota meanwhile")
        held = _held(_after(later, again, now + GRACE_S))[job.project]
        wanted = min(quota, _held(snap)[job.project] + job.gpus)
        assert held >= wanted, ("project short of its quota", job, held, decisions, again)


# p holds its whole quota (1 GPU). Its CPU-only preemptible job holds CPUs its other CPU-only
# job needs; both are "in quota" (held + 0 GPUs ≤ quota) and a 0-GPU victim leaves p at its
# quota, so p preempts its own job.
AT_QUOTA_ZERO_GPU_VICTIM = _case(
    _quotas(
        snapshot(
            [a_node("n1").cpus(9)],
            running=[
                running(100, {"n1": 1}, project="p"),
                _preemptible(running(101, {"n1": Resources(0, 4, 0)}, project="p")),
            ],
            pending=[a_job(2, "p").gpus(0).cpus(8)],
        ),
        p=1,
    ),
    now=100,
)


@PROPERTIES
@example(AT_QUOTA_ZERO_GPU_VICTIM)
@given(cases())
def test_fairshare_preempts_only_projects_holding_more_than_their_quota(case: Case) -> None:
    snap = case.snap
    held = _held(snap)
    for victim in _victims(snap, schedule(snap, FAIRSHARE, case.now)):
        assert held[victim.project] > snap.project(victim.project).quota_gpus, (victim, held)


# r borrows both nodes. p's in-quota job takes r's newest job as its victim; q's in-quota job,
# looking for victims among the same running jobs, takes it again (r, still counted as holding
# 8 above its quota, can lose it "again") and counts its node's room a second time: two
# Preempts of one job, and q is promised room that does not exist.
ONE_VICTIM_FOR_TWO_RECLAIMS = _case(
    _quotas(
        snapshot(
            [a_node("n1"), a_node("n2")],
            running=[
                _preemptible(running(100, {"n1": 8}, started_at=10, project="r")),
                _preemptible(running(101, {"n2": 8}, started_at=0, project="r")),
            ],
            pending=[a_job(1, "p").gpus(8).submitted(0), a_job(2, "q").gpus(8).submitted(1)],
        ),
        p=8,
        q=8,
    ),
    now=100,
)


@PROPERTIES
@example(ONE_VICTIM_FOR_TWO_RECLAIMS)
@given(cases(busy=True))
def test_fairshare_preempts_each_victim_once(case: Case) -> None:
    preempted = Counter(
        d.job_id for d in schedule(case.snap, FAIRSHARE, case.now) if isinstance(d, Preempt)
    )
    assert all(times == 1 for times in preempted.values()), preempted


# ---- fairshare: no preemption loops ---------------------------------------------------------

MAX_ROUNDS = 40


@dataclass
class Rounds:
    """`fairshare` round after round on a facility where nothing ends but what is asked to
    stop (by the next round), preempted jobs waiting again as the simulator requeues them."""

    snap: Snapshot
    now: float
    asks: dict[int, PendingJob] = field(default_factory=dict)
    preemptions: int = 0

    def play(self) -> list[Decision]:
        decisions = schedule(self.snap, FAIRSHARE, self.now)
        victims = list({v.job_id: v for v in _victims(self.snap, decisions)}.values())
        _assert_borrowed_only(self.snap, victims)
        self.preemptions += len(victims)
        self.asks.update((job.job_id, job) for job in self.snap.pending)
        self.snap = _after(self.snap, decisions, self.now, self.asks)
        self.now += GRACE_S
        return decisions


# p holds its quota (1 GPU); its two CPU-only jobs are both in quota and do not fit together.
# The older starts; the younger preempts it; requeued with its submit time the older is ahead
# again and takes its room back; and so on for ever.
ZERO_GPU_JOBS_PREEMPT_EACH_OTHER = _case(
    _quotas(
        snapshot(
            [a_node("n1").cpus(9)],
            running=[running(100, {"n1": 1}, project="p")],
            pending=[
                replace(a_job(1, "p").gpus(0).cpus(4).build(), preemptible=True),
                a_job(2, "p").gpus(0).cpus(8),
            ],
        ),
        p=1,
    ),
    now=0,
)


@PROPERTIES
@example(ZERO_GPU_JOBS_PREEMPT_EACH_OTHER)
@given(cases(busy=True))
def test_rounds_without_completions_reach_a_fixed_point(case: Case) -> None:
    _assert_fixed_point(case)


@PROPERTIES
@given(cases(busy=True).map(_quota_less_borrowers))
def test_gpu_jobs_reach_a_fixed_point_without_preemption_loops(case: Case) -> None:
    _assert_fixed_point(case)


def _assert_fixed_point(case: Case) -> None:
    """Rounds end in one that decides nothing, Σ min(held, quota) never falls on the way,
    and no more jobs are preempted than ran at first."""
    rounds = Rounds(case.snap, case.now)
    guaranteed = _guaranteed(rounds.snap)
    for _ in range(MAX_ROUNDS):
        if not rounds.play():
            break
        assert _guaranteed(rounds.snap) >= guaranteed, (guaranteed, rounds.snap)
        guaranteed = _guaranteed(rounds.snap)
    else:
        raise AssertionError(f"still deciding after {MAX_ROUNDS} rounds: {rounds.snap}")
    if rounds.preemptions:
        event("rounds with preemptions")
    assert rounds.preemptions <= len(case.snap.running), rounds.preemptions
