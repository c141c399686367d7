"""The job life cycle: every (from, to) pair of states, legal or not."""

from __future__ import annotations

import itertools

import pytest

from aifactory.domain.jobs import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    IllegalTransition,
    JobSpec,
    JobState,
    check_transition,
)
from aifactory.domain.resources import Resources

S = JobState

# The life cycle as DESIGN.md §3 states it, written out by hand so that a change to
# `TRANSITIONS` has to be made twice, on purpose.
LEGAL: frozenset[tuple[JobState, JobState]] = frozenset(
    {
        (S.PENDING, S.ADMITTED),
        (S.PENDING, S.HELD),
        (S.PENDING, S.CANCELLED),
        (S.PENDING, S.FAILED),
        (S.HELD, S.PENDING),
        (S.HELD, S.CANCELLED),
        (S.ADMITTED, S.RUNNING),
        (S.ADMITTED, S.PENDING),
        (S.ADMITTED, S.FAILED),
        (S.ADMITTED, S.CANCELLED),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.CANCELLED),
        (S.RUNNING, S.TIMEOUT),
        (S.RUNNING, S.PREEMPTED),
        (S.PREEMPTED, S.PENDING),
    }
)
ALL_PAIRS = list(itertools.product(JobState, JobState))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def _ids(pair: tuple[JobState, JobState]) -> str:
    return f"{pair[0]}->{pair[1]}"


def test_the_table_has_a_row_for_every_state() -> None:
    assert set(TRANSITIONS) == set(JobState)


def test_the_table_is_exactly_the_documented_life_cycle() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == LEGAL


def test_every_pair_is_walked() -> None:
    assert len(ALL_PAIRS) == len(JobState) ** 2 == 81
    assert len(LEGAL) + len(ILLEGAL) == len(ALL_PAIRS)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL), ids=_ids)
def test_legal_transition_is_accepted(current: JobState, target: JobState) -> None:
    check_transition(7, current, target)  # raises if it is not legal
    assert target in TRANSITIONS[current]


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=_ids)
def test_illegal_transition_raises(current: JobState, target: JobState) -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(7, current, target)
    error = caught.value
    assert error.job_id == 7
    assert error.current is current
    assert error.target is target
    assert str(error) == f"job 7: {current} → {target} is not a legal transition"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("state", list(JobState), ids=str)
def test_no_state_transitions_to_itself(state: JobState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(1, state, state)


def test_terminal_states_are_exactly_the_four_ends() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMEOUT} == TERMINAL


@pytest.mark.parametrize("state", sorted(TERMINAL), ids=str)
def test_terminal_states_have_no_exit(state: JobState) -> None:
    assert TRANSITIONS[state] == frozenset()
    for target in JobState:
        with pytest.raises(IllegalTransition):
            check_transition(1, state, target)


def test_preempted_is_not_terminal_and_only_goes_back_to_pending() -> None:
    assert S.PREEMPTED not in TERMINAL
    assert TRANSITIONS[S.PREEMPTED] == {S.PENDING}
    check_transition(1, S.PREEMPTED, S.PENDING)
    for target in set(JobState) - {S.PENDING}:
        with pytest.raises(IllegalTransition):
            check_transition(1, S.PREEMPTED, target)


def test_only_a_running_job_can_be_preempted() -> None:
    sources = {a for a, targets in TRANSITIONS.items() if S.PREEMPTED in targets}
    assert sources == {S.RUNNING}


def test_every_state_is_reachable_from_pending() -> None:
    seen = {S.PENDING}
    frontier = [S.PENDING]
    while frontier:
        state = frontier.pop()
        for nxt in TRANSITIONS[state]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(JobState)


def test_every_non_terminal_state_can_still_reach_an_end() -> None:
    for start in set(JobState) - TERMINAL:
        seen = {start}
        frontier = [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL, start


def test_state_groups() -> None:
    assert {S.ADMITTED, S.RUNNING} == ACTIVE
    assert {S.PENDING, S.HELD} == WAITING
    assert not ACTIVE & TERMINAL
    assert not WAITING & TERMINAL
    assert not ACTIVE & WAITING


def test_states_serialise_as_their_names() -> None:
    for state in JobState:
        assert state.value == state.name
        assert JobState(state.name) is state


def test_spec_per_node_and_total_gpus() -> None:
    spec = JobSpec(
        name="train",
        command=("python", "train.py"),
        gpus_per_node=4,
        nodes=3,
        cpus_per_node=16,
        memory_mb_per_node=64_000,
    )
    assert spec.per_node == Resources(4, 16, 64_000)
    assert spec.total_gpus == 12


def test_spec_defaults_are_one_small_cpu_slice() -> None:
    spec = JobSpec(name="hello", command=("echo", "hi"))
    assert spec.per_node == Resources(gpus=0, cpus=1, memory_mb=1024)
    assert spec.nodes == 1
    assert spec.total_gpus == 0
    assert spec.time_limit_s == 3600
    assert spec.gpu_model is None
    assert spec.env == {}
