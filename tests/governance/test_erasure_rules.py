"""The pure rules of erasure and closure: the state tables, the rule for running jobs, and the
report's digest."""

from __future__ import annotations

import pytest

from aifactory.domain.datasets import ErasureTrigger
from aifactory.domain.erasure import (
    CLOSURE_TRANSITIONS,
    TRANSITIONS,
    ClosureState,
    ErasureState,
    IllegalErasureTransition,
    check_closure_transition,
    check_transition,
    refuses_running_jobs,
    report_digest,
    running_jobs_message,
)


def test_an_erasure_only_moves_forward_one_step_at_a_time() -> None:
    order = [ErasureState.RECORDED, ErasureState.ERASING, ErasureState.DONE]
    for current in ErasureState:
        for target in ErasureState:
            legal = order.index(target) == order.index(current) + 1
            assert (target in TRANSITIONS[current]) is legal
            if legal:
                check_transition(current, target)
            else:
                with pytest.raises(IllegalErasureTransition):
                    check_transition(current, target)


def test_a_closure_goes_closing_to_closed_and_stays() -> None:
    assert CLOSURE_TRANSITIONS[ClosureState.CLOSED] == frozenset()
    check_closure_transition(ClosureState.CLOSING, ClosureState.CLOSED)
    for current, target in [
        (ClosureState.CLOSED, ClosureState.CLOSING),
        (ClosureState.CLOSING, ClosureState.CLOSING),
    ]:
        with pytest.raises(IllegalErasureTransition):
            check_closure_transition(current, target)


@pytest.mark.parametrize(
    ("trigger", "stop", "refused"),
    [
        (ErasureTrigger.REQUEST, False, True),
        (ErasureTrigger.REQUEST, True, False),
        (ErasureTrigger.RETENTION, False, False),
        (ErasureTrigger.CLOSURE, False, False),
    ],
)
def test_only_a_request_that_does_not_stop_them_is_refused_for_running_jobs(
    trigger: ErasureTrigger, stop: bool, refused: bool
) -> None:
    assert refuses_running_jobs(trigger, stop_running_jobs=stop) is refused


def test_the_refusal_names_the_jobs_in_order() -> None:
    said = running_jobs_message("nl-books version 2", [12, 4])
    assert said.startswith("nl-books version 2 is used by running jobs 4, 12:")
    assert "stop_running_jobs" in said
    assert "running job 7:" in running_jobs_message("x", [7])


def test_the_digest_does_not_depend_on_key_order() -> None:
    one = {"a": 1, "b": {"c": [1, 2], "d": "é"}}
    other = {"b": {"d": "é", "c": [1, 2]}, "a": 1}
    assert report_digest(one) == report_digest(other)
    assert report_digest(one) != report_digest({**one, "a": 2})
    assert len(report_digest(one)) == 64
