"""What to do about one active job, given what its executor observed. Pure.

Used on every tick and, above all, on the first tick after a restart: an ADMITTED job the
executor never saw is started (starting is idempotent); one that ran while the control plane
was down gets the transitions it missed, in order; one whose record is gone fails loudly.

Stopping: a cancel or a preemption asked for (on the job row) is passed on to the executor on
every tick until the attempt has exited; a cancel wins over a preemption. An attempt that
exited preempted is requeued — RUNNING → PREEMPTED → PENDING, or ADMITTED → PENDING if it never
ran — with its placement and times cleared so it is scheduled afresh; `submitted_at` stays, so
it keeps its place in line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aifactory.domain.jobs import JobState
from aifactory.executors.base import Observation, Outcome, Phase

_FINAL_STATE = {
    Outcome.SUCCEEDED: JobState.SUCCEEDED,
    Outcome.FAILED: JobState.FAILED,
    Outcome.TIMEOUT: JobState.TIMEOUT,
    Outcome.CANCELLED: JobState.CANCELLED,
    Outcome.PREEMPTED: JobState.CANCELLED,  # only when a cancel was asked for too: it wins
}
# What a requeued job forgets, so it is scheduled afresh (its events keep the history).
_REQUEUED = {
    "placement": None,
    "admitted_at": None,
    "started_at": None,
    "preempt_requested_at": None,
    "preempt_reason": None,
}


@dataclass(frozen=True, slots=True)
class Move:
    target: JobState
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    moves: tuple[Move, ...] = ()
    start: bool = False
    cancel: bool = False
    preempt: bool = False  # when with `start`, the executor must be told before the start


def plan_for(
    state: JobState,
    cancel_requested: bool,
    seen: Observation,
    preempt_reason: str | None = None,
) -> Plan:
    """`preempt_reason` is set once the scheduler has asked to preempt the job."""
    preempt = preempt_reason is not None and not cancel_requested
    if seen.phase is Phase.NOT_STARTED:
        return _not_started(state, cancel_requested, preempt)
    if seen.phase is Phase.STARTING:
        return Plan(cancel=cancel_requested, preempt=preempt)
    if seen.phase is Phase.RUNNING:
        moves = (_running(seen),) if state is JobState.ADMITTED else ()
        return Plan(moves=moves, cancel=cancel_requested, preempt=preempt)
    if seen.phase is Phase.EXITED:
        return Plan(moves=_exited(state, seen, cancel_requested, preempt_reason))
    return Plan(moves=(Move(JobState.FAILED, f"lost: {seen.reason}"),))


def _not_started(state: JobState, cancel_requested: bool, preempt: bool) -> Plan:
    """A preempted job the executor never saw is still started, with the preemption told
    first: the executor then settles, under its own lock, a start a dead control plane may
    have left in flight, and records 'preempted before it started' without running it."""
    if state is JobState.RUNNING:
        return Plan(moves=(Move(JobState.FAILED, "lost: the executor has no record of it"),))
    if cancel_requested:
        return Plan(moves=(Move(JobState.CANCELLED, "cancelled before it started"),))
    return Plan(start=True, preempt=preempt)


def _running(seen: Observation) -> Move:
    return Move(JobState.RUNNING, "started", {"started_at": seen.started_at})


def _exited(
    state: JobState, seen: Observation, cancel_requested: bool, preempt_reason: str | None
) -> tuple[Move, ...]:
    assert seen.outcome is not None
    ran = seen.exit_code is not None or seen.outcome is Outcome.TIMEOUT
    moves: list[Move] = []
    if state is JobState.ADMITTED and ran:
        moves.append(_running(seen))
    if seen.outcome is Outcome.PREEMPTED and not cancel_requested:
        started = state is JobState.RUNNING or ran
        return (*moves, *_requeue(started, preempt_reason or seen.reason or "preempted"))
    final = _FINAL_STATE[seen.outcome]
    if not ran and final not in (JobState.CANCELLED, JobState.FAILED):
        final = JobState.FAILED
    reason = seen.reason or final.value.lower()
    if seen.outcome is Outcome.PREEMPTED:
        reason = "cancelled while it was being preempted"
    moves.append(Move(final, reason, {"exit_code": seen.exit_code, "ended_at": seen.ended_at}))
    return tuple(moves)


def _requeue(started: bool, why: str) -> tuple[Move, ...]:
    """Back to PENDING, through PREEMPTED if the attempt got to run."""
    if not started:
        return (Move(JobState.PENDING, f"preempted before it started: {why}", dict(_REQUEUED)),)
    return (
        Move(JobState.PREEMPTED, f"preempted: {why}"),
        Move(JobState.PENDING, "requeued after preemption", dict(_REQUEUED)),
    )
