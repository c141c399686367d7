"""One round of the facility's decisions, and the verdict on every job that waits. Pure.

`decide` is the one place a waiting job is judged. First what can never run is cancelled (a
job it depends on ended the wrong way); then the holds (scheduler.admission): a waiting job
that may not start at all (its dependencies not ended, no data grant, no budget) is held, a
held one whose hold is mended is released and considered at once. Then the policy chooses
what starts and what is preempted among the rest. Last, if asked, every job still waiting
gets its verdict (scheduler.explain), worked out on the facility as it will be once this
round's starts are carried out: HOLD with what releases it, or WAIT with what is short, on
which nodes, its place in line and an estimated start. The control loop carries the
decisions out (re-checking holds as it commits) and keeps the verdicts for `queue`, `show`,
the job page and the API, so they all say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from aifactory.scheduler import arrays
from aifactory.scheduler.admission import doomed, hold_reason, releasable, release_reason
from aifactory.scheduler.decisions import Cancel, Decision, Hold, Release, Start
from aifactory.scheduler.explain import Explanation, explain
from aifactory.scheduler.policy import Policy, schedule
from aifactory.scheduler.snapshot import PendingJob, RunningJob, Snapshot

Scheduler = Callable[[Snapshot, Policy, float], list[Decision]]


@dataclass(frozen=True, slots=True)
class Round:
    decisions: list[Decision]  # cancels, releases and holds first, then starts and preempts
    verdicts: dict[int, Explanation] | None  # every job still waiting; None: not asked for


def decide(
    snapshot: Snapshot,
    policy: Policy,
    now: float,
    *,
    scheduler: Scheduler = schedule,
    with_verdicts: bool = True,
) -> Round:
    waiting = (*snapshot.pending, *snapshot.held)
    ended = {j.job_id: why for j in waiting if (why := doomed(j, snapshot.admission))}
    if ended:  # never to run: out of the round altogether
        snapshot = replace(
            snapshot,
            pending=tuple(j for j in snapshot.pending if j.job_id not in ended),
            held=tuple(j for j in snapshot.held if j.job_id not in ended),
        )
    barred, in_line = _screen(snapshot, now)
    decisions: list[Decision] = [Cancel(job_id, why) for job_id, why in sorted(ended.items())]
    decisions += [
        Release(job.job_id, release_reason(job))
        for job in snapshot.held
        if job.job_id not in barred
    ]
    decisions += [
        Hold(job.job_id, barred[job.job_id]) for job in snapshot.pending if job.job_id in barred
    ]
    running = arrays.running_tasks(snapshot)
    full = {j.job_id: arrays.reason(j) for j in in_line.pending if arrays.at_limit(j, running)}
    if full:  # an array at its limit: its other tasks wait out of this round
        in_line = replace(
            in_line, pending=tuple(j for j in in_line.pending if j.job_id not in full)
        )
    chosen = scheduler(in_line, policy, now) if in_line.pending else []
    chosen, cut = arrays.within_limits(chosen, {j.job_id: j for j in in_line.pending}, running)
    decisions += chosen
    if not with_verdicts:
        return Round(decisions, None)
    verdicts = explain(_after(in_line, chosen, now), now, policy, after_round=True)
    for job in cut:  # started by the policy, held back by its array's limit
        verdicts[job.job_id] = replace(verdicts[job.job_id], reason=arrays.reason(job))
    waits = {i: Explanation(i, None, why, None) for i, why in full.items()}
    return Round(decisions, verdicts | waits | _held(barred))


def judge(snapshot: Snapshot, policy: Policy, now: float) -> dict[int, Explanation]:
    """The verdicts alone, on the facility as it is, for when no round has been carried out
    (no control loop has run yet): the same rules, but a job that fits is told it will start
    at the next round."""
    barred, in_line = _screen(snapshot, now)
    return explain(in_line, now, policy) | _held(barred)


def _screen(snapshot: Snapshot, now: float) -> tuple[dict[int, str], Snapshot]:
    """The holds of every waiting job, and the facility with the others all in line. A hold
    no round made (a person's) stands as it is."""
    waiting = (*snapshot.pending, *snapshot.held)
    barred = {
        job.job_id: why
        for job in waiting
        if (
            why := _kept_hold(job)
            or doomed(job, snapshot.admission)
            or hold_reason(job, snapshot.admission, now)
        )
    }
    free = tuple(replace(job, held=None) for job in waiting if job.job_id not in barred)
    return barred, replace(snapshot, pending=free, held=())


def _kept_hold(job: PendingJob) -> str | None:
    return job.held if job.held is not None and not releasable(job) else None


def _held(barred: dict[int, str]) -> dict[int, Explanation]:
    return {
        job_id: Explanation(job_id, None, why, None, held=True) for job_id, why in barred.items()
    }


def _after(snapshot: Snapshot, chosen: list[Decision], now: float) -> Snapshot:
    """The facility once this round's starts run: they hold their room and wait no more."""
    starts = {d.job_id: d for d in chosen if isinstance(d, Start)}
    if not starts:
        return snapshot
    started = tuple(
        _running(job, starts[job.job_id], now) for job in snapshot.pending if job.job_id in starts
    )
    return replace(
        snapshot,
        pending=tuple(job for job in snapshot.pending if job.job_id not in starts),
        running=(*snapshot.running, *started),
        free=None,  # counted again from what runs
    )


def _running(job: PendingJob, start: Start, now: float) -> RunningJob:
    return RunningJob(
        job.job_id,
        job.project,
        start.placement,
        started_at=now,
        time_limit_s=job.time_limit_s,
        user=job.user,
        preemptible=job.preemptible,
    )
