"""How the accounting commands show figures and dates: GPU-hours, energy, CO2, days, minutes."""

from __future__ import annotations

import re

import pytest

from aifactory.cli.units import co2, day, energy, hours, minute


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (12000.0, "12,000"),
        (1500.4, "1,500"),
        (100.0, "100"),
        (99.996, "100"),
        (42.37, "42.4"),
        (30.0, "30"),
        (2.75, "2.75"),
        (2.5, "2.5"),
        (1.0, "1"),
        (0.9996, "1"),
        (0.5, "0.5"),
        (4 / 3600, "0.001"),  # four GPU-seconds
        (0.002, "0.002"),
        (1 / 3600, "<0.001"),  # one GPU-second: small, but not nothing
        (-4 / 3600, "-0.001"),
        (-1 / 3600, "-<0.001"),
        (-20.5, "-20.5"),
        (-1234.0, "-1,234"),
    ],
)
def test_gpu_hours_keep_about_three_significant_digits(value: float, shown: str) -> None:
    assert hours(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(100.0, "+100"), (0.5, "+0.5"), (-1.0, "-1"), (-4 / 3600, "-0.001"), (0.0, "0")],
)
def test_ledger_amounts_carry_their_sign(value: float, shown: str) -> None:
    assert hours(value, signed=True) == shown


@pytest.mark.parametrize(
    ("kwh", "shown"),
    [
        (0.0, "0 Wh"),
        (1215.3 / 3.6e6, "0.338 Wh"),
        (0.0443, "44.3 Wh"),
        (0.5, "500 Wh"),
        (1.0, "1 kWh"),
        (12.345, "12.3 kWh"),
        (2500.0, "2,500 kWh"),
    ],
)
def test_energy_below_a_kilowatt_hour_reads_in_watt_hours(kwh: float, shown: str) -> None:
    assert energy(kwh) == shown


def test_co2_below_a_kilogram_reads_in_grams() -> None:
    assert (co2(0.0), co2(0.0911), co2(1.2), co2(1500.0)) == (
        "0 g CO2",
        "0.091 g CO2",
        "1.2 g CO2",
        "1.5 kg CO2",
    )


def test_a_boundary_shows_as_its_utc_day() -> None:
    assert day("2026-11-01T00:00:00Z") == "2026-11-01"
    assert day("2026-11-01T01:30:00+02:00") == "2026-10-31"  # 23:30 UTC the day before
    assert day("2026-11-01T00:00:00") == "2026-11-01"  # no offset: UTC, as the API reads it
    assert day(None) == "-"


def test_a_moment_shows_to_the_minute() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", minute("2026-11-26T16:33:49.78Z"))
    assert minute(None) == "-"
