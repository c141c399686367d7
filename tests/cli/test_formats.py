from __future__ import annotations

import pytest
import typer

from aifactory.cli.formats import parse_duration, parse_env


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1:30", 5400),
        ("1:30:00", 5400),
        ("2-00:00:01", 172801),
    ],
)
def test_durations_as_people_and_slurm_write_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "1:2:3:4", "a-1:00"])
def test_durations_that_are_not(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_env_pairs() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(typer.BadParameter):
        parse_env(["NOVALUE"])
