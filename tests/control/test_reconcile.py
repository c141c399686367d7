"""`plan_for`: what to do about one active job, given what its executor observed.

Every phase × {ADMITTED, RUNNING} × cancel flag × preemption asked (and every outcome for
EXITED) is tabled, and every planned sequence of moves must be legal from the job's state under
the domain's table.
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
WHY = "reclaimed for project p"
REQUEUED = {
    "placement": None,
    "admitted_at": None,
    "started_at": None,
    "preempt_requested_at": None,
    "preempt_reason": None,
}


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


ALL = list(itertools.product(sorted(ACTIVE), (False, True), (None, WHY), _every_observation()))


def test_every_phase_is_covered() -> None:
    assert {seen.phase for *_, seen in ALL} == set(Phase)
    assert {seen.outcome for *_, seen in ALL} >= set(Outcome)


@pytest.mark.parametrize(("state", "cancel", "preempt", "seen"), ALL)
def test_every_plan_is_a_legal_walk(
    state: JobState, cancel: bool, preempt: str | None, seen: Observation
) -> None:
    plan = plan_for(state, cancel, seen, preempt)
    end = walk(state, plan)
    requeued = seen.outcome is Outcome.PREEMPTED and not cancel
    # A plan never leaves an active job half-way: it stays active, reaches an end state, or —
    # preempted — is back in line.
    assert end in ACTIVE or not TRANSITIONS[end] or requeued, (state, seen, end)
    # Nothing goes backwards but a preempted job, which is requeued (and then always is).
    assert (S.PENDING in targets(plan)) is requeued
    assert S.ADMITTED not in targets(plan)
    if requeued:
        assert end is S.PENDING
        assert plan.moves[-1].fields == REQUEUED  # scheduled afresh, in its place in line
    # It never both starts and moves, nor starts and cancels.
    assert not (plan.start and plan.moves)
    assert not (plan.start and plan.cancel)
    # The executor is told to preempt only what was asked, and never beside a cancel (it wins).
    assert not (plan.preempt and (cancel or preempt is None))
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
    preempt: bool = False  # the scheduler asked to preempt the job
    preempt_executor: bool = False


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
    # Preemption asked: passed on until the attempt has exited; a cancel wins. One the executor
    # never saw is started with the preemption told first, so it never runs (see _not_started).
    Row(A, False, Phase.NOT_STARTED, [], start=True, preempt=True, preempt_executor=True),
    Row(A, True, Phase.NOT_STARTED, [S.CANCELLED], preempt=True),
    Row(R, False, Phase.NOT_STARTED, [S.FAILED], preempt=True),
    Row(A, False, Phase.STARTING, [], preempt=True, preempt_executor=True),
    Row(R, True, Phase.STARTING, [], cancel_executor=True, preempt=True),
    Row(A, False, Phase.RUNNING, [S.RUNNING], preempt=True, preempt_executor=True),
    Row(R, False, Phase.RUNNING, [], preempt=True, preempt_executor=True),
    Row(R, True, Phase.RUNNING, [], cancel_executor=True, preempt=True),
    Row(R, False, Phase.LOST, [S.FAILED], preempt=True),  # it may run on: never requeue it
]


def _row_id(r: Row) -> str:
    asked = ("cancel-" if r.cancel else "") + ("preempt-" if r.preempt else "")
    return f"{r.state}-{asked or 'keep-'}{r.phase}"


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_non_exit_phases(row: Row) -> None:
    seen = observed(row.phase, reason="gone")
    plan = plan_for(row.state, row.cancel, seen, WHY if row.preempt else None)
    assert targets(plan) == row.moves
    assert plan.start is row.start
    assert plan.cancel is row.cancel_executor
    assert plan.preempt is row.preempt_executor


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


@pytest.mark.parametrize("preempt", [None, WHY], ids=["", "preempting"])
@pytest.mark.parametrize("cancel", [False, True], ids=["keep", "cancel"])
@pytest.mark.parametrize(("state", "outcome", "code", "expected"), EXIT_ROWS)
def test_exited(
    state: JobState,
    outcome: Outcome,
    code: int | None,
    expected: list[JobState],
    cancel: bool,
    preempt: str | None,
) -> None:
    """A job that ended on its own keeps its outcome, even if a preemption was on its way."""
    plan = plan_for(state, cancel, observed(Phase.EXITED, outcome, code), preempt)
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


# ---- EXITED preempted: requeued, unless a cancel came too ----------------------------------

PREEMPTED_ROWS = [
    # (state, exit code, cancel asked, expected moves)
    (A, -15, False, [S.RUNNING, S.PREEMPTED, S.PENDING]),  # it ran while we were away
    (A, None, False, [S.PENDING]),  # preempted before it started
    (R, -15, False, [S.PREEMPTED, S.PENDING]),
    (R, -9, False, [S.PREEMPTED, S.PENDING]),  # ignored SIGTERM: killed after the grace
    (R, None, False, [S.PREEMPTED, S.PENDING]),
    (A, -15, True, [S.RUNNING, S.CANCELLED]),
    (A, None, True, [S.CANCELLED]),
    (R, -15, True, [S.CANCELLED]),
]


@pytest.mark.parametrize(("state", "code", "cancel", "expected"), PREEMPTED_ROWS)
def test_exited_preempted(
    state: JobState, code: int | None, cancel: bool, expected: list[JobState]
) -> None:
    seen = observed(Phase.EXITED, Outcome.PREEMPTED, code, reason="preempted: stopped")
    plan = plan_for(state, cancel, seen, WHY)
    assert targets(plan) == expected
    assert walk(state, plan) is expected[-1]
    assert (plan.start, plan.cancel, plan.preempt) == (False, False, False)


def test_a_preempted_running_job_is_requeued_with_the_schedulers_reason() -> None:
    seen = observed(Phase.EXITED, Outcome.PREEMPTED, -15, reason="preempted: stopped")
    assert plan_for(R, False, seen, WHY) == Plan(
        moves=(
            Move(S.PREEMPTED, f"preempted: {WHY}"),
            Move(S.PENDING, "requeued after preemption", REQUEUED),
        )
    )


def test_a_job_preempted_before_it_started_goes_straight_back_in_line() -> None:
    seen = observed(Phase.EXITED, Outcome.PREEMPTED, None, reason="preempted before it started")
    assert plan_for(A, False, seen, WHY) == Plan(
        moves=(Move(S.PENDING, f"preempted before it started: {WHY}", REQUEUED),)
    )


def test_a_cancel_during_a_preemption_ends_the_job_cancelled() -> None:
    seen = observed(Phase.EXITED, Outcome.PREEMPTED, -15, reason="preempted: stopped")
    assert plan_for(R, True, seen, WHY) == Plan(
        moves=(
            Move(
                S.CANCELLED,
                "cancelled while it was being preempted",
                {"exit_code": -15, "ended_at": ENDED},
            ),
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
