"""Money and metered time: exact prices of milliseconds, rounded once, half up, to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.money import (
    cents,
    cents_of,
    cost_cents,
    exact_euros,
    ms_of_seconds,
    whole_seconds,
)


def test_a_millisecond_of_a_gpu_hour_is_priced_exactly() -> None:
    assert exact_euros(1, Decimal("3.60")) == Fraction(1, 1_000_000)
    assert exact_euros(400, Decimal("2.50")) == Fraction(1, 3600)  # 0.4 s: 0.0277… cents
    assert cost_cents(400, Decimal("2.50")) == 0  # alone, it rounds to nothing…
    # …but two hundred of them, summed first, are 5.55… cents.
    assert cents_of(200 * exact_euros(400, Decimal("2.50"))) == 6


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Fraction(1, 200), 1),  # half a cent: up
        (Fraction(-1, 200), -1),  # and away from zero below it
        (Fraction(1, 201), 0),
        (Fraction(149, 100), 149),
        (Fraction(0), 0),
    ],
)
def test_cents_round_half_up(amount: Fraction, expected: int) -> None:
    assert cents_of(amount) == expected


@given(st.decimals(-(10**9), 10**9, places=6))
def test_exact_rounding_agrees_with_decimal_half_up(amount: Decimal) -> None:
    assert cents_of(Fraction(amount)) == cents(amount)


def test_the_clock_is_read_to_the_millisecond_and_shown_in_whole_seconds() -> None:
    assert ms_of_seconds(0.4) == 400
    assert ms_of_seconds(1_700_000_000.9 - 1_700_000_000.123) == 777
    assert [whole_seconds(ms) for ms in (499, 500, 1_499, -500, -499)] == [0, 1, 1, -1, 0]
