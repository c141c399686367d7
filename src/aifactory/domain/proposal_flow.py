"""How a proposal moves: it is submitted, then decided exactly once.

A submitted proposal is awarded (it becomes an allocation), rejected (with a note) or
withdrawn by its project; a decided proposal never moves again. Pure: no I/O.
"""

from __future__ import annotations

from aifactory.domain.programmes import ProposalState

TRANSITIONS: dict[ProposalState, frozenset[ProposalState]] = {
    ProposalState.SUBMITTED: frozenset(
        {ProposalState.AWARDED, ProposalState.REJECTED, ProposalState.WITHDRAWN}
    ),
    ProposalState.AWARDED: frozenset(),
    ProposalState.REJECTED: frozenset(),
    ProposalState.WITHDRAWN: frozenset(),
}


def transition_problem(current: ProposalState, to: ProposalState) -> str | None:
    """Why a proposal in `current` cannot become `to`, or None if it can."""
    if to in TRANSITIONS[current]:
        return None
    return f"the proposal is {current.value}; only a submitted one can be {to.value}"
