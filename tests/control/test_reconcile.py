"""`plan_for`: what to do about one active job, given what its executor observed.

Every phase × {ADMITTED, RUNNING} × cancel flag (and every outcome for EXITED) is tabled, and
every planned sequence of moves must be legal from the job's state under the domain's table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from aifactory.control.reconcile import Move, Plan, plan_for
from aifactory.domain.jobs import ACTIVE, TRANSITIONS, JobState, check_transition
from aifactory.executors.base import Observation, Outcome, Phase

S = JobState
STARTED, ENDED = 100.0, 160.0


def observed(
    phase: Phase,
    outcome: Outcome | None = None,
    exit_code: int | None = None,
    reason: str | None = None,
) -> Observation:
    started = STARTED if phase in (Phase.RUNNING, Phase.EXITED) else None
    ended = ENDED if phase is Phase.EXITED else None
    return Observation(phase, started, ended, exit_code, outcome, reason)


def targets(plan: Plan) -> list[JobState]:
    return [move.target for move in plan.moves]


def walk(state: JobState, plan: Plan) -> JobState:
    """Apply the plan's moves with the domain's own check; return where the job ends up."""
    for move in plan.moves:
        check_transition(1, state, move.target)
        state = move.target
    return state


# ---- the whole table --------------------------------------------------------------------------


def _every_observation() -> list[Observation]:
    seen = [observed(Phase.NOT_STARTED), observed(Phase.STARTING), observed(Phase.RUNNING)]
    for outcome, code in itertools.product(Outcome, (None, 0, 1, -9)):
        seen.append(observed(Phase.EXITED, outcome, code))
        seen.append(observed(Phase.EXITED, outcome, code, reason="said the executor"))
    seen.append(observed(Phase.LOST, reason="node rebooted"))
    return seen


ALL = list(itertools.product(sorted(ACTIVE), (False, True), _every_observation()))


def test_every_phase_is_covered() -> None:
    assert {seen.phase for _, _, seen in ALL} == set(Phase)
    assert {seen.outcome for _, _, seen in ALL} >= set(Outcome)


@pytest.mark.parametrize(("state", "cancel", "seen"), ALL)
def test_every_plan_is_a_legal_walk(state: JobState, cancel: bool, seen: Observation) -> None:
    plan = plan_for(state, cancel, seen)
    end = walk(state, plan)
    # A plan never leaves an active job half-way: it stays active or reaches an end state.
    assert end in ACTIVE or not TRANSITIONS[end], (state, seen, end)
    # Nothing goes backwards: a RUNNING job is never sent to PENDING or ADMITTED.
    assert S.PENDING not in targets(plan)
    assert S.ADMITTED not in targets(plan)
    # It never both starts and moves, nor starts and cancels.
    assert not (plan.start and plan.moves)
    assert not (plan.start and plan.cancel)
    # Only an ADMITTED job that nobody has seen is started.
    if plan.start:
        assert state is S.ADMITTED
        assert seen.phase is Phase.NOT_STARTED


@dataclass(frozen=True)
class Row:
    state: JobState
    cancel: bool
    phase: Phase
    moves: list[JobState]
    start: bool = False
    cancel_executor: bool = False


A, R = S.ADMITTED, S.RUNNING
ROWS = [
    # NOT_STARTED: the executor never saw it.
    Row(A, False, Phase.NOT_STARTED, [], start=True),
    Row(A, True, Phase.NOT_STARTED, [S.CANCELLED]),
    Row(R, False, Phase.NOT_STARTED, [S.FAILED]),
    Row(R, True, Phase.NOT_STARTED, [S.FAILED]),
    # STARTING: wait; pass a cancel on.
    Row(A, False, Phase.STARTING, []),
    Row(A, True, Phase.STARTING, [], cancel_executor=True),
    Row(R, False, Phase.STARTING, []),
    Row(R, True, Phase.STARTING, [], cancel_executor=True),
    # RUNNING: catch up ADMITTED → RUNNING; pass a cancel on.
    Row(A, False, Phase.RUNNING, [S.RUNNING]),
    Row(A, True, Phase.RUNNING, [S.RUNNING], cancel_executor=True),
    Row(R, False, Phase.RUNNING, []),
    Row(R, True, Phase.RUNNING, [], cancel_executor=True),
    # LOST: fails, whatever was asked.
    Row(A, False, Phase.LOST, [S.FAILED]),
    Row(A, True, Phase.LOST, [S.FAILED]),
    Row(R, False, Phase.LOST, [S.FAILED]),
    Row(R, True, Phase.LOST, [S.FAILED]),
]


@pytest.mark.parametrize(
    "row", ROWS, ids=[f"{r.state}-{'cancel' if r.cancel else 'keep'}-{r.phase}" for r in ROWS]
)
def test_non_exit_phases(row: Row) -> None:
    plan = plan_for(row.state, row.cancel, observed(row.phase, reason="gone"))
    assert targets(plan) == row.moves
    assert plan.start is row.start
    assert plan.cancel is row.cancel_executor


# ---- EXITED, outcome by outcome ---------------------------------------------------------------

EXIT_ROWS = [
    # (state, outcome, exit code, expected moves)
    (A, Outcome.SUCCEEDED, 0, [S.RUNNING, S.SUCCEEDED]),
    (A, Outcome.FAILED, 1, [S.RUNNING, S.FAILED]),
    (A, Outcome.CANCELLED, -15, [S.RUNNING, S.CANCELLED]),
    (A, Outcome.TIMEOUT, None, [S.RUNNING, S.TIMEOUT]),  # a timeout always ran
    (A, Outcome.TIMEOUT, -9, [S.RUNNING, S.TIMEOUT]),
    # No exit code: it never ran. Cancelled and failed stay; success cannot be, so it fails.
    (A, Outcome.SUCCEEDED, None, [S.FAILED]),
    (A, Outcome.FAILED, None, [S.FAILED]),
    (A, Outcome.CANCELLED, None, [S.CANCELLED]),
    (R, Outcome.SUCCEEDED, 0, [S.SUCCEEDED]),
    (R, Outcome.FAILED, 3, [S.FAILED]),
    (R, Outcome.CANCELLED, -15, [S.CANCELLED]),
    (R, Outcome.TIMEOUT, None, [S.TIMEOUT]),
    (R, Outcome.TIMEOUT, -9, [S.TIMEOUT]),
    (R, Outcome.SUCCEEDED, None, [S.FAILED]),
    (R, Outcome.FAILED, None, [S.FAILED]),
    (R, Outcome.CANCELLED, None, [S.CANCELLED]),
]


@pytest.mark.parametrize("cancel", [False, True], ids=["keep", "cancel"])
@pytest.mark.parametrize(("state", "outcome", "code", "expected"), EXIT_ROWS)
def test_exited(
    state: JobState, outcome: Outcome, code: int | None, expected: list[JobState], cancel: bool
) -> None:
    plan = plan_for(state, cancel, observed(Phase.EXITED, outcome, code))
    assert targets(plan) == expected
    assert walk(state, plan) is expected[-1]
    # An exited job needs no start and no cancel, whatever was asked.
    assert not plan.start
    assert not plan.cancel
    final = plan.moves[-1]
    assert final.fields == {"exit_code": code, "ended_at": ENDED}
    assert final.reason == expected[-1].value.lower()  # no reason given: the state's name
    if len(plan.moves) == 2:
        assert plan.moves[0].fields == {"started_at": STARTED}


def test_exited_keeps_the_executors_reason() -> None:
    plan = plan_for(R, False, observed(Phase.EXITED, Outcome.FAILED, 137, reason="OOM killed"))
    assert plan.moves == (Move(S.FAILED, "OOM killed", {"exit_code": 137, "ended_at": ENDED}),)


def test_exited_admitted_job_catches_up_in_order() -> None:
    plan = plan_for(A, False, observed(Phase.EXITED, Outcome.SUCCEEDED, 0))
    assert plan == Plan(
        moves=(
            Move(S.RUNNING, "started", {"started_at": STARTED}),
            Move(S.SUCCEEDED, "succeeded", {"exit_code": 0, "ended_at": ENDED}),
        )
    )


# ---- reasons and fields -----------------------------------------------------------------------


def test_running_move_records_when_it_started() -> None:
    plan = plan_for(A, False, observed(Phase.RUNNING))
    assert plan == Plan(moves=(Move(S.RUNNING, "started", {"started_at": STARTED}),))


def test_lost_job_fails_with_the_executors_reason() -> None:
    plan = plan_for(R, False, observed(Phase.LOST, reason="node rebooted"))
    assert plan == Plan(moves=(Move(S.FAILED, "lost: node rebooted"),))


def test_running_job_the_executor_forgot_fails_loudly() -> None:
    plan = plan_for(R, False, observed(Phase.NOT_STARTED))
    assert plan == Plan(moves=(Move(S.FAILED, "lost: the executor has no record of it"),))


def test_cancel_before_start_needs_no_executor_call() -> None:
    plan = plan_for(A, True, observed(Phase.NOT_STARTED))
    assert plan == Plan(moves=(Move(S.CANCELLED, "cancelled before it started"),))


def test_admitted_and_unseen_is_started_again() -> None:
    assert plan_for(A, False, observed(Phase.NOT_STARTED)) == Plan(start=True)


def test_plans_do_not_share_mutable_fields() -> None:
    first = plan_for(A, False, observed(Phase.RUNNING))
    first.moves[0].fields["started_at"] = -1.0
    second = plan_for(A, False, observed(Phase.RUNNING))
    assert second.moves[0].fields == {"started_at": STARTED}
