from __future__ import annotations

import pytest
import typer

from aifactory.cli.formats import parse_env, table  # durations: tests/cli/test_jobfile.py


def test_env_pairs() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(typer.BadParameter):
        parse_env(["NOVALUE"])


HELD = "job 1 attempt 1: up to 2 GPUs × 1800 s, held until the attempt ends and settles"
LEDGER = (
    ["at", "kind", "GPU-h", "€", "job", "by", "reason"],
    [
        ["2026-11-26 16:33", "award", "+100", "", "-", "bootstrap", "starter allocation of p"],
        ["2026-11-26 16:34", "reserve", "-1", "", "1.1", "control", HELD],
    ],
)


def shown_at(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    table(None, *LEDGER, spare=("by",), last_wraps_to=40)
    return capsys.readouterr().out.splitlines()


def test_a_wide_console_shows_every_column_one_line_a_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shown_at(200, monkeypatch, capsys)
    assert "bootstrap" in lines[3]
    assert len(lines) == 6  # rule, headings, rule, the two rows, rule: nothing wrapped


def test_a_narrow_console_leaves_out_spare_columns_before_wrapping(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shown_at(100, monkeypatch, capsys)
    assert not any("bootstrap" in line for line in lines)
    assert max(len(line) for line in lines) <= 100
    assert "…" not in "".join(lines)


def test_only_many_word_cells_wrap_and_none_is_cut_short(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shown_at(80, monkeypatch, capsys)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "".join(lines)
    assert sum("2026-11-26 16:34" in line for line in lines) == 1  # dates stay whole
    assert len(lines) > 6  # the reason wraps instead
