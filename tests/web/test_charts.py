"""The SVG charts: well-formed, accessible (title + description), escaped, scaled."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aifactory.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(chart: charts.Svg) -> ET.Element:
    return ET.fromstring(chart.markup)  # noqa: S314 - our own markup


def test_a_line_chart_is_an_image_with_a_title_a_description_and_one_line_per_series() -> None:
    chart = charts.line_chart(
        [charts.Series("busy", [(0, 10), (3600, 50)]), charts.Series("idle", [(0, 90)])],
        title="GPU <utilisation>",
        unit=" %",
        y_max=100,
    )
    root = parse(chart)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "GPU <utilisation>"  # type: ignore[union-attr]
    labelled = root.get("aria-labelledby", "").split()
    assert [root.find(f".//*[@id='{i}']") is not None for i in labelled] == [True, True]
    assert len(root.findall(f"{SVG}polyline")) == 2
    assert "latest busy 50 %, idle 90 %" in chart.summary
    assert "&lt;utilisation&gt;" in chart.markup


def test_values_are_placed_on_a_nice_axis() -> None:
    assert [charts.nice_max(v) for v in (0, 0.3, 1, 7, 12, 180)] == [1, 0.5, 1, 10, 20, 200]
    root = parse(charts.bar_chart([("a", 5), ("b", 10)], title="t"))
    heights = [float(r.get("height", "0")) for r in root.findall(f"{SVG}rect")]
    assert heights[1] == 2 * heights[0]


def test_no_data_says_so_instead_of_drawing_an_empty_axis() -> None:
    chart = charts.line_chart([charts.Series("x", [])], title="Queue")
    assert chart.summary == "Queue: no data yet."
    assert parse(chart).find(f"{SVG}polyline") is None


def test_a_gauge_shows_what_is_left_and_turns_red_when_little_is() -> None:
    assert "75%" in charts.gauge(25, 100, title="g").markup
    low = charts.gauge(95, 100, title="g", unit=" h")
    assert "gauge-low" in low.markup
    assert low.summary == "g: 5 h of 100 h left (5%)."
    assert "0%" in charts.gauge(150, 100, title="overspent").markup


def _ticks(chart: charts.Svg) -> list[str]:
    return [t.text or "" for t in parse(chart).iter(f"{SVG}text") if t.get("class") == "tick"]


def test_axis_ticks_fall_on_round_figures_and_round_moments() -> None:
    burned = charts.Series("burned", [(0, 0.0), (7200, 15.2)])
    ticks = _ticks(charts.line_chart([burned], title="GPU-hours", unit=" h"))
    assert ticks[:5] == ["0 h", "5 h", "10 h", "15 h", "20 h"]  # never 3.8 h
    assert ticks[5:] == ["00:00", "00:30", "01:00", "01:30", "02:00"]
    small = charts.line_chart([charts.Series("x", [(0, 0.0), (60, 0.013)])], title="t", unit=" h")
    assert _ticks(small)[:4] == ["0.000 h", "0.005 h", "0.010 h", "0.015 h"]
    bars = _ticks(charts.bar_chart([("a", 3.8), ("b", 1.0)], title="t"))
    assert bars[:5] == ["0", "1", "2", "3", "4"]


def test_the_loss_curve_names_its_axes() -> None:
    loss = charts.Series("train loss", [(0, 4.2), (100, 2.5), (250, 2.1)])
    chart = charts.line_chart([loss], title="Loss", time_axis=False, x_title="step", y_title="loss")
    titles = [t.text for t in parse(chart).iter(f"{SVG}text") if t.get("class") == "axis-title"]
    assert titles == ["loss", "step"]
    assert _ticks(chart)[-6:] == ["0", "50", "100", "150", "200", "250"]  # the steps
