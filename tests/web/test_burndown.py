"""The burn-down's arithmetic: the running balance of an allocation's ledger, its steps, the
ideal pace, and the chart drawn from them."""

from __future__ import annotations

from aifactory.web.burndown import (
    as_steps,
    burndown_chart,
    ideal_line,
    running_balance,
)

H = 3_600_000  # GPU-milliseconds, the ledger's unit
DAY = 86400.0


def test_the_running_balance_follows_award_settlements_and_adjustments() -> None:
    entries = [
        (0.0, 100 * H),  # award
        (DAY, -10 * H),  # a job settled
        (2 * DAY, 25 * H),  # topped up
        (3 * DAY, -15 * H),  # another job settled
        (4 * DAY, -50 * H),  # a correction down
    ]

    assert running_balance(entries) == [
        (0.0, 100.0),
        (DAY, 90.0),
        (2 * DAY, 115.0),
        (3 * DAY, 100.0),
        (4 * DAY, 50.0),
    ]


def test_entries_at_one_instant_make_one_point() -> None:
    entries = [(0.0, 10 * H), (DAY, -H), (DAY, -H // 2), (2 * DAY, -H)]

    assert running_balance(entries) == [(0.0, 10.0), (DAY, 8.5), (2 * DAY, 7.5)]
    assert running_balance([]) == []


def test_steps_hold_each_balance_until_the_next_entry_and_then_until_now() -> None:
    points = [(0.0, 100.0), (DAY, 90.0), (3 * DAY, 70.0)]

    assert as_steps(points, until=5 * DAY) == [
        (0.0, 100.0),
        (DAY, 100.0),
        (DAY, 90.0),
        (3 * DAY, 90.0),
        (3 * DAY, 70.0),
        (5 * DAY, 70.0),
    ]
    assert as_steps(points, until=2 * DAY)[-1] == (3 * DAY, 70.0), "never drawn backwards"
    assert as_steps([]) == []


def test_the_ideal_line_runs_from_the_award_to_nothing_over_the_window() -> None:
    assert ideal_line(100.0, 10.0, 20.0) == [(10.0, 100.0), (20.0, 0.0)]


def test_the_chart_is_an_accessible_svg_with_both_lines() -> None:
    chart = burndown_chart(
        [(0.0, 100.0), (DAY, 60.0)],
        awarded_h=100.0,
        valid_from=0.0,
        valid_to=10 * DAY,
        now=2 * DAY,
        title="a-pilot: GPU-hours left over time",
    )
    empty = burndown_chart(
        [], awarded_h=1.0, valid_from=0.0, valid_to=DAY, now=0.0, title="nothing <yet>"
    )

    assert chart.markup.startswith('<svg class="chart chart-line"')
    assert 'role="img"' in chart.markup
    assert "<title id=" in chart.markup
    assert "a-pilot: GPU-hours left over time</title>" in chart.markup
    assert chart.markup.count("<polyline") == 2
    assert "GPU-hours left 60 h" in chart.summary
    assert "ideal pace 0 h" in chart.summary
    assert "no ledger entries yet" in empty.markup
    assert "nothing &lt;yet&gt;" in empty.markup
