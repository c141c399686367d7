"""Erasure and project closure: the pure rules (GDPR Art. 17, retention expiry, closure).

Vocabulary: an *erasure* removes one dataset version's files for one *trigger* (a request, the
end of its retention period, the closure of its owning project). Its *report* says what was
removed and who had used it; its *certificate* is a PDF that names the report by its SHA-256.
A *closure* ends a project for good: grants revoked, datasets erased, job directories removed.

Invariants:
- An erasure moves only along `TRANSITIONS`: recorded → erasing → done. Once `erasing`, the
  version is never readable again; `erasing` is finished after a crash, never undone.
- A version is erased only while no active job uses it. A request is refused while one does,
  unless the requester asks for those jobs to be stopped; retention expiry and closure always
  stop them (`refuses_running_jobs`).
- A closure moves closing → closed, once every erasure it started is done and no job of the
  project is active any more.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from aifactory.domain.datasets import ErasureTrigger


class ErasureState(enum.StrEnum):
    RECORDED = "recorded"  # asked for; waits until no active job uses the version
    ERASING = "erasing"  # the version is unusable; its files are being removed
    DONE = "done"  # files gone, report and certificate stored


TRANSITIONS: dict[ErasureState, frozenset[ErasureState]] = {
    ErasureState.RECORDED: frozenset({ErasureState.ERASING}),
    ErasureState.ERASING: frozenset({ErasureState.DONE}),
    ErasureState.DONE: frozenset(),
}
OPEN: frozenset[ErasureState] = frozenset({ErasureState.RECORDED, ErasureState.ERASING})


class ClosureState(enum.StrEnum):
    CLOSING = "closing"
    CLOSED = "closed"


CLOSURE_TRANSITIONS: dict[ClosureState, frozenset[ClosureState]] = {
    ClosureState.CLOSING: frozenset({ClosureState.CLOSED}),
    ClosureState.CLOSED: frozenset(),
}


class IllegalErasureTransition(ValueError):
    pass


def check_transition(current: ErasureState, target: ErasureState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalErasureTransition(f"erasure: {current} → {target} is not a legal transition")


def check_closure_transition(current: ClosureState, target: ClosureState) -> None:
    if target not in CLOSURE_TRANSITIONS[current]:
        raise IllegalErasureTransition(f"closure: {current} → {target} is not a legal transition")


def refuses_running_jobs(trigger: ErasureTrigger, *, stop_running_jobs: bool) -> bool:
    """Whether an erasure with this trigger is refused while active jobs use the version. Only
    a request may be refused (its requester decides); retention and closure always stop them."""
    return trigger is ErasureTrigger.REQUEST and not stop_running_jobs


def running_jobs_message(
    what: str,
    job_ids: Sequence[int],
    *,
    relation: str = "is used by",
    then: str = "the erasure runs",
) -> str:
    """Why a request was refused, naming the jobs: 'nl-books version 2 is used by running jobs
    4, 7: …'; a closure says 'project lab has running jobs …', 'the closure finishes'."""
    listed = ", ".join(str(j) for j in sorted(job_ids))
    one = len(job_ids) == 1
    noun, it, ends, has = ("job", "it", "ends", "has") if one else ("jobs", "they", "end", "have")
    return (
        f"{what} {relation} running {noun} {listed}: wait until {it} {ends}, or ask again "
        f"with stop_running_jobs to cancel {'it' if one else 'them'} ({then} once {it} {has} "
        "stopped)"
    )


def canonical_json(document: dict[str, Any]) -> bytes:
    """The one byte form a report is hashed in: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def report_digest(report: dict[str, Any]) -> str:
    """The SHA-256 a certificate names its report by (of `canonical_json(report)`)."""
    return hashlib.sha256(canonical_json(report)).hexdigest()
