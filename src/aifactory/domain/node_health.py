"""Node drain and health: who may take a node out of service, and who may bring it back.

Vocabulary: a *drained* node takes no new work; what runs on it finishes. A drain has a reason,
who drained it (an operator's name, or `HEALTH` for the automatic check) and since when. A
*checkup* is one health check of one node: the problem it found, or None when it passed.

The rule between the two (`after_checkup`):
- a failing node that is not drained is drained by `HEALTH`, with the problem as its reason;
- a node drained by `HEALTH` is resumed by `HEALTH` once a checkup passes again — nobody had
  to decide anything, so nobody has to undo it;
- a node an operator drained stays drained whatever the checks say: they took it out for a
  reason no check can see (a repair), and only a person resumes it;
- a node drained by `HEALTH` that still fails keeps its drain, with the newest problem.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

HEALTH = "health"  # `drained_by` of the automatic health check
REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class Drain:
    reason: str
    by: str
    since: float

    @property
    def by_health(self) -> bool:
        return self.by == HEALTH


@dataclass(frozen=True, slots=True)
class Checkup:
    """One health check of one node: `problem` is what failed, None when everything passed."""

    node_id: str
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None


class Step(enum.StrEnum):
    KEEP = "keep"  # nothing to change
    DRAIN = "drain"  # drain it (or, drained by health already, with the newest problem)
    RESUME = "resume"


def after_checkup(drain: Drain | None, checkup: Checkup) -> Step:
    """What the health check does to a node after `checkup` (see the module's rule)."""
    if drain is not None and not drain.by_health:
        return Step.KEEP
    if checkup.passed:
        return Step.RESUME if drain is not None else Step.KEEP
    if drain is None or drain.reason != checkup.problem:
        return Step.DRAIN
    return Step.KEEP


def reason_problem(reason: str) -> str | None:
    """Why an operator's drain reason cannot be taken, or None when it can."""
    if not reason.strip():
        return "say why the node is drained (it is shown wherever the node is)"
    if len(reason) > REASON_MAX:
        return f"at most {REASON_MAX} characters"
    if any(ch in reason for ch in "\r\n\0"):
        return "one line: no line breaks"
    return None
