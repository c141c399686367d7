"""Access modes: working days with Dutch holidays, deadlines (Large Scale from its cut-off),
lateness, a call's terms, and the Playground's first-come-first-served award — all on a fixed
clock."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.access_modes import (
    DAY_S,
    TIMEZONE,
    AccessFact,
    AccessMode,
    AutoAward,
    CallTerms,
    add_working_days,
    deadline,
    end_of_day,
    is_late,
    is_working_day,
    local_day,
    next_cutoff,
    playground_award,
    terms_problems,
    terms_with_defaults,
    time_to_access,
    working_days_between,
)
from aifactory.services.public_holidays import dutch

PLAYGROUND = CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=500.0)
FAST_LANE = CallTerms(AccessMode.FAST_LANE)
LARGE_SCALE = CallTerms(AccessMode.LARGE_SCALE)


def at(day: str, clock: str = "10:00") -> float:
    """A moment in Amsterdam."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=TIMEZONE).timestamp()


def due_day(terms: CallTerms, submitted: float) -> date:
    found = deadline(terms, submitted, dutch)
    assert found is not None
    return found.day


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-04-27", False),  # King's Day (a Monday)
        ("2026-04-06", False),  # Easter Monday
        ("2026-12-25", False),  # Christmas
        ("2026-05-25", False),  # Whit Monday
        ("2026-04-25", False),  # a Saturday
        ("2026-04-28", True),
    ],
)
def test_working_days_leave_out_weekends_and_dutch_holidays(day: str, working: bool) -> None:
    assert is_working_day(date.fromisoformat(day), dutch) is working


@pytest.mark.parametrize(
    ("terms", "submitted", "due"),
    [
        (PLAYGROUND, at("2026-04-24"), "2026-04-29"),  # Fri; Mon is King's Day
        (PLAYGROUND, at("2026-04-25"), "2026-04-29"),  # a Saturday counts from Monday on
        (PLAYGROUND, at("2026-12-23"), "2026-12-28"),  # Christmas on Friday
        (FAST_LANE, at("2026-04-02"), "2026-04-10"),  # Good Friday and Easter Monday
        (FAST_LANE, at("2026-06-01"), "2026-06-05"),
        (PLAYGROUND, at("2026-04-24", "23:30"), "2026-04-29"),  # still Friday in Amsterdam
    ],
)
def test_a_deadline_counts_working_days_from_the_day_of_submission(
    terms: CallTerms, submitted: float, due: str
) -> None:
    assert due_day(terms, submitted) == date.fromisoformat(due)


def test_a_deadline_ends_at_local_midnight_of_its_day() -> None:
    found = deadline(PLAYGROUND, at("2026-04-24"), dutch)
    assert found is not None
    assert found.at == at("2026-04-30", "00:00")


def test_a_day_is_the_amsterdam_day_not_the_utc_one() -> None:
    # 23:30 UTC on Friday 24 April is 01:30 on Saturday in Amsterdam (CEST).
    utc_friday_night = datetime.fromisoformat("2026-04-24T23:30+00:00").timestamp()
    assert local_day(utc_friday_night) == date(2026, 4, 25)


@pytest.mark.parametrize(
    ("submitted", "cutoff", "due"),
    [
        (at("2026-05-02"), "2026-05-15", "2026-06-01"),  # Whit Monday 25 May on the way
        (at("2026-05-15", "23:30"), "2026-05-15", "2026-06-01"),  # the cut-off day counts
        (at("2026-05-16"), "2026-06-01", "2026-06-15"),
        (at("2026-12-20"), "2027-01-01", "2027-01-15"),  # over the new year
    ],
)
def test_large_scale_counts_from_the_next_cut_off(submitted: float, cutoff: str, due: str) -> None:
    found = deadline(LARGE_SCALE, submitted, dutch)
    assert found is not None
    assert (found.clock_from, found.day) == (date.fromisoformat(cutoff), date.fromisoformat(due))


def test_cut_offs_are_configurable() -> None:
    terms = CallTerms(AccessMode.LARGE_SCALE, cutoff_days=(10,))
    assert next_cutoff(at("2026-05-11"), terms.cutoffs()) == date(2026, 6, 10)
    assert next_cutoff(at("2026-12-11"), (10, 20)) == date(2026, 12, 20)


def test_a_plain_reviewed_call_has_no_deadline_and_is_never_late() -> None:
    reviewed = CallTerms()
    assert deadline(reviewed, at("2026-04-24"), dutch) is None
    assert not is_late(None, None, now=at("2030-01-01"))


def test_late_is_answered_or_still_open_after_the_deadline() -> None:
    due = end_of_day(date(2026, 4, 29))
    assert not is_late(due, None, now=due - 1)
    assert is_late(due, None, now=due)
    assert not is_late(due, due - 1, now=due + 10 * DAY_S)  # answered in time
    assert is_late(due, due + 1, now=due + 2)


def test_working_days_between_counts_after_the_first_day() -> None:
    assert working_days_between(date(2026, 4, 24), date(2026, 4, 29), dutch) == 2
    assert working_days_between(date(2026, 4, 24), date(2026, 4, 24), dutch) == 0
    assert add_working_days(date(2026, 4, 24), 0, dutch) == date(2026, 4, 24)


# -- a call's terms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        (CallTerms(AccessMode.PLAYGROUND), "ceiling_gpu_hours"),  # a playground needs one
        (CallTerms(AccessMode.FAST_LANE, ceiling_gpu_hours=50_001.0), "ceiling_gpu_hours"),
        (CallTerms(AccessMode.REVIEWED, ceiling_gpu_hours=2e6), "ceiling_gpu_hours"),  # > budget
        (CallTerms(AccessMode.PLAYGROUND, 10.0, max_days=120), "max_days"),  # 1–3 months
        (CallTerms(AccessMode.LARGE_SCALE, min_days=200, max_days=100), "max_days"),
        (CallTerms(AccessMode.FAST_LANE, cutoff_days=(1,)), "cutoff_days"),
        (CallTerms(AccessMode.LARGE_SCALE, cutoff_days=(31,)), "cutoff_days"),
    ],
)
def test_terms_that_break_a_rule_name_their_field(terms: CallTerms, field: str) -> None:
    assert field in [f for f, _ in terms_problems(terms, budget_gpu_hours=1e6)]


def test_stored_terms_take_the_modes_defaults() -> None:
    assert terms_with_defaults(FAST_LANE) == CallTerms(
        AccessMode.FAST_LANE, 50_000.0, 30, 90, (), FAST_LANE.funding
    )
    assert terms_with_defaults(LARGE_SCALE).cutoff_days == (1, 15)
    assert list(terms_problems(terms_with_defaults(LARGE_SCALE), 1e6)) == []


# -- Playground --------------------------------------------------------------------------------


def test_playground_awards_a_request_within_the_ceiling_at_once() -> None:
    now = at("2026-04-24")
    found = playground_award(
        PLAYGROUND, requested_gpu_hours=500.0, left_gpu_hours=600.0, days=30, now=now
    )
    assert found == AutoAward(500.0, now, now + 30 * DAY_S)


@pytest.mark.parametrize(
    ("requested", "left", "days", "field", "words"),
    [
        (501.0, 10_000.0, 30, "requested_gpu_hours", "at most 500"),
        (400.0, 399.5, 30, "requested_gpu_hours", "399.5 GPU-h left"),
        (100.0, 10_000.0, 10, "requested_days", "30–90 days"),
    ],
)
def test_playground_refuses_over_the_ceiling_the_budget_or_its_durations(
    requested: float, left: float, days: int, field: str, words: str
) -> None:
    found = playground_award(
        PLAYGROUND, requested_gpu_hours=requested, left_gpu_hours=left, days=days, now=0.0
    )
    assert isinstance(found, tuple)
    assert found[0] == field
    assert words in found[1]


def test_first_come_first_served_until_the_budget_is_gone() -> None:
    left, awarded = 1000.0, []
    for requested in (400.0, 400.0, 400.0, 200.0):
        found = playground_award(
            PLAYGROUND, requested_gpu_hours=requested, left_gpu_hours=left, days=30, now=0.0
        )
        if isinstance(found, AutoAward):
            left -= found.gpu_hours
            awarded.append(requested)
    assert awarded == [400.0, 400.0, 200.0]


# -- time to access ------------------------------------------------------------------------------


def test_time_to_access_per_mode_against_its_service_level() -> None:
    def fact(mode: AccessMode, submitted: str, access: str) -> AccessFact:
        terms = CallTerms(mode, ceiling_gpu_hours=1.0)
        found = deadline(terms, at(submitted), dutch)
        assert found is not None
        days = working_days_between(found.clock_from, local_day(at(access)), dutch)
        return AccessFact(mode, at(submitted), at(access), found.at, days)

    facts = [
        fact(AccessMode.PLAYGROUND, "2026-04-24", "2026-04-24"),  # at once: 0 working days
        fact(AccessMode.FAST_LANE, "2026-04-02", "2026-04-09"),  # 3 working days: in time
        fact(AccessMode.FAST_LANE, "2026-04-02", "2026-04-13"),  # 5: late
        fact(AccessMode.FAST_LANE, "2026-06-01", "2026-06-03"),  # 2
    ]
    found = time_to_access(facts)
    assert list(found) == ["fast_lane", "playground"]
    lane = found["fast_lane"]
    assert (lane.service_days, lane.proposals, lane.within) == (4, 3, 2)
    assert lane.median_working_days == 3.0
    assert lane.share_within == pytest.approx(2 / 3)
    assert found["playground"].median_working_days == 0.0


# -- properties ----------------------------------------------------------------------------------

MOMENTS = st.floats(min_value=at("2024-01-01"), max_value=at("2030-12-31"))
MODES = st.sampled_from([AccessMode.PLAYGROUND, AccessMode.FAST_LANE, AccessMode.LARGE_SCALE])
CUTOFFS = st.lists(st.integers(1, 28), min_size=1, max_size=4, unique=True).map(tuple)


@given(submitted=MOMENTS, mode=MODES, cutoffs=CUTOFFS)
def test_a_deadline_is_a_working_day_never_before_submission(
    submitted: float, mode: AccessMode, cutoffs: tuple[int, ...]
) -> None:
    terms = CallTerms(mode, cutoff_days=cutoffs if mode is AccessMode.LARGE_SCALE else ())
    found = deadline(terms, submitted, dutch)
    assert found is not None
    assert is_working_day(found.day, dutch)
    assert found.at > submitted
    assert found.clock_from >= local_day(submitted)
    level = terms.level.working_days
    assert working_days_between(found.clock_from, found.day, dutch) == level
    if mode is AccessMode.LARGE_SCALE:
        assert found.clock_from.day in cutoffs
