"""Job dependencies, as Slurm's `--dependency` has them: a job may start only after earlier
jobs have ended (`any`), ended well (`ok`: SUCCEEDED) or ended badly (`not-ok`: FAILED,
TIMEOUT or CANCELLED). Pure.

While a dependency has not ended the job is held ("after: …", released by the round that sees
it met); once a dependency has ended the wrong way it can never be met, and the job is
cancelled saying which one and how it ended — it would otherwise wait for ever.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from aifactory.domain.jobs import TERMINAL, JobState

AFTER_HOLD = "after: "  # how a job held for its dependencies says so
MAX_DEPENDENCIES = 32


class After(enum.StrEnum):
    OK = "ok"
    ANY = "any"
    NOT_OK = "not-ok"


MEETS: dict[After, frozenset[JobState]] = {
    After.OK: frozenset({JobState.SUCCEEDED}),
    After.ANY: TERMINAL,
    After.NOT_OK: frozenset({JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED}),
}
WORDS = {After.OK: "to succeed", After.ANY: "to end", After.NOT_OK: "to fail"}
PAST = {After.OK: "succeeded", After.ANY: "ended", After.NOT_OK: "failed"}


@dataclass(frozen=True, slots=True)
class Dependency:
    after: After
    job_id: int


@dataclass(frozen=True, slots=True)
class DependencyState:
    """A dependency with where the job it names stands now."""

    dependency: Dependency
    state: JobState


def never_met(states: Iterable[DependencyState]) -> str | None:
    """Why the dependencies can never all be met (a job they name ended the wrong way)."""
    for found in states:
        after, state = found.dependency.after, found.state
        if state in TERMINAL and state not in MEETS[after]:
            return (
                f"dependency on job {found.dependency.job_id} can never be met: "
                f"it ended {state.value}, and this job was to run only if it {PAST[after]}"
            )
    return None


def still_waiting(states: Iterable[DependencyState]) -> str | None:
    """What the job still waits for (None: every dependency is met)."""
    waiting = [f for f in states if f.state not in TERMINAL]
    if not waiting:
        return None
    named = ", ".join(f"job {f.dependency.job_id} {WORDS[f.dependency.after]}" for f in waiting)
    return AFTER_HOLD + "waits for " + named
