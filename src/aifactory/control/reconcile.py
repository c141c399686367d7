"""What to do about one active job, given what its executor observed. Pure.

Used on every tick and, above all, on the first tick after a restart: an ADMITTED job the
executor never saw is started (starting is idempotent); one that ran while the control plane
was down gets the transitions it missed, in order; one whose record is gone fails loudly.
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


def plan_for(state: JobState, cancel_requested: bool, seen: Observation) -> Plan:
    if seen.phase is Phase.NOT_STARTED:
        return _not_started(state, cancel_requested)
    if seen.phase is Phase.STARTING:
        return Plan(cancel=cancel_requested)
    if seen.phase is Phase.RUNNING:
        moves = (_running(seen),) if state is JobState.ADMITTED else ()
        return Plan(moves=moves, cancel=cancel_requested)
    if seen.phase is Phase.EXITED:
        return Plan(moves=_exited(state, seen))
    return Plan(moves=(Move(JobState.FAILED, f"lost: {seen.reason}"),))


def _not_started(state: JobState, cancel_requested: bool) -> Plan:
    if state is JobState.RUNNING:
        return Plan(moves=(Move(JobState.FAILED, "lost: the executor has no record of it"),))
    if cancel_requested:
        return Plan(moves=(Move(JobState.CANCELLED, "cancelled before it started"),))
    return Plan(start=True)


def _running(seen: Observation) -> Move:
    return Move(JobState.RUNNING, "started", {"started_at": seen.started_at})


def _exited(state: JobState, seen: Observation) -> tuple[Move, ...]:
    assert seen.outcome is not None
    ran = seen.exit_code is not None or seen.outcome is Outcome.TIMEOUT
    moves: list[Move] = []
    if state is JobState.ADMITTED and ran:
        moves.append(_running(seen))
    final = _FINAL_STATE[seen.outcome]
    if not ran and final not in (JobState.CANCELLED, JobState.FAILED):
        final = JobState.FAILED
    moves.append(
        Move(
            final,
            seen.reason or final.value.lower(),
            {"exit_code": seen.exit_code, "ended_at": seen.ended_at},
        )
    )
    return tuple(moves)
