"""Charts as SVG, drawn on the server: they need no script, print, and are read out by screen
readers (a title and a one-line description of what they show). Colours come from the style
sheet's `series-N` classes, so the page's Content-Security-Policy needs no inline styles.

Pure: figures in, markup out. Every text is escaped here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
TICKS = 4  # about this many intervals along an axis
TITLE_ROOM = 16  # what an axis title takes beside or below its axis
PALETTE_SIZE = 8
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Svg:
    markup: str
    summary: str  # the chart in one sentence (its <desc>)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (x, y): x a Unix time for time charts


def _frame(title: str, summary: str, body: str, *, width: int, height: int, kind: str) -> Svg:
    n = next(_ids)
    markup = (
        f'<svg class="chart chart-{kind}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-t{n} chart-d{n}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-t{n}">{escape(title)}</title>'
        f'<desc id="chart-d{n}">{escape(summary)}</desc>{body}</svg>'
    )
    return Svg(markup, summary)


def nice_max(value: float) -> float:
    """The top of the axis: 1, 2 or 5 times a power of ten, at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def nice_step(span: float, ticks: int = TICKS) -> float:
    """A round distance between ticks (1, 2 or 5 times a power of ten), the one nearest to
    giving `ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return float(min((m * power for m in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / raw))))


def axis_top(value: float, step: float) -> float:
    """The first multiple of `step` at or above `value` (never 0: an axis needs a height)."""
    return max(math.ceil(value / step - 1e-9), 1) * step


def value_ticks(low: float, high: float, step: float) -> list[float]:
    """The multiples of `step` from `low` to `high`, both included where they are multiples."""
    first = math.ceil(low / step - 1e-9)
    return [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]


TIME_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
)  # seconds: ticks on the clock's own round moments


def time_step(span: float) -> float:
    wanted = span / TICKS
    return float(next((s for s in TIME_STEPS if s >= wanted), TIME_STEPS[-1]))


def _fmt(value: float, step: float | None = None) -> str:
    """A figure with as many decimals as its axis step needs (a step of 0.02: two)."""
    if step is not None and step < 1:
        return f"{value:.{-math.floor(math.log10(step) + 1e-9)}f}"
    if abs(value) >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"


def _left(labels: Sequence[str], y_title: str | None) -> int:
    """Room for the longest label of the y axis (about 6.5 px a character at 11 px), and for
    the axis title beside it."""
    room = max(LEFT, round(10 + 6.5 * max(len(label) for label in labels)))
    return room + (TITLE_ROOM if y_title else 0)


def _time_label(t: float, step: float, span: float) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    if step < 60:
        return moment.strftime("%H:%M:%S")
    if step < 86400:
        return moment.strftime("%H:%M" if span <= 86400 else "%d %b %H:%M")
    return moment.strftime("%d %b")


def _y_axis(
    top: float, step: float, unit: str, width: int, height: int, left: int, bottom: int
) -> list[str]:
    parts = []
    for value in value_ticks(0.0, top, step):
        y = height - bottom - (height - TOP - bottom) * value / top
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(value, step) + unit)}</text>"
        )
    return parts


def _titles(
    x_title: str | None, y_title: str | None, width: int, height: int, left: int
) -> list[str]:
    """The axes' titles: what is measured along them, with its unit."""
    parts = []
    if y_title:
        middle = TOP + (height - TOP - BOTTOM - (TITLE_ROOM if x_title else 0)) / 2
        parts.append(
            f'<text class="axis-title" x="12" y="{middle:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {middle:.1f})">{escape(y_title)}</text>'
        )
    if x_title:
        centre = left + (width - left - RIGHT) / 2
        parts.append(
            f'<text class="axis-title" x="{centre:.1f}" y="{height - 4}" '
            f'text-anchor="middle">{escape(x_title)}</text>'
        )
    return parts


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    y_max: float | None = None,
    time_axis: bool = True,
    step: bool = False,
    x_title: str | None = None,
    y_title: str | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Svg:
    """Lines over x (time by default); `step`: hold each value until the next point. Ticks
    fall on round figures and round moments; `x_title`/`y_title` name what the axes measure."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    if not xs:
        return empty(title, "no data yet", width=width, height=height)
    x0, x1 = min(xs), max(xs)
    span = (x1 - x0) or 1.0
    y_step = nice_step(y_max if y_max is not None else max(max(ys), 0.0) or 1.0)
    top = y_max if y_max is not None else axis_top(max(ys), y_step)
    bottom = BOTTOM + (TITLE_ROOM if x_title else 0)
    labels = [_fmt(v, y_step) + unit for v in value_ticks(0.0, top, y_step)]
    left = _left(labels, y_title)
    plot_w, plot_h = width - left - RIGHT, height - TOP - bottom

    def at(x: float, y: float) -> str:
        px = left + (x - x0) / span * plot_w
        py = height - bottom - min(max(y, 0.0), top) / top * plot_h
        return f"{px:.1f},{py:.1f}"

    parts = _y_axis(top, y_step, unit, width, height, left, bottom)
    parts += _titles(x_title, y_title, width, height, left)
    x_step = time_step(span) if time_axis else nice_step(span)
    for x in value_ticks(x0, x0 + span, x_step):
        label = _time_label(x, x_step, span) if time_axis else _fmt(x, x_step)
        px = left + (x - x0) / span * plot_w
        anchor = "end" if px > width - RIGHT - 20 else "middle"  # the last label inside
        parts.append(
            f'<text class="tick" x="{px:.1f}" y="{height - bottom + 20}" '
            f'text-anchor="{anchor}">{escape(label)}</text>'
        )
    for index, line in enumerate(series):
        points = sorted(line.points)
        if step and points:
            held = [points[0]]
            for x, y in points[1:]:
                held += [(x, held[-1][1]), (x, y)]
            points = held
        path = " ".join(at(x, y) for x, y in points)
        css = f"series-{index % PALETTE_SIZE}"
        if len(points) == 1:  # a line needs two points: show the one as a dot
            cx, cy = at(*points[0]).split(",")
            parts.append(f'<circle class="dot {css}" cx="{cx}" cy="{cy}" r="4"/>')
        parts.append(
            f'<polyline class="line {css}" points="{path}">'
            f"<title>{escape(line.name)}</title></polyline>"
        )
    last = ", ".join(f"{s.name} {_fmt(sorted(s.points)[-1][1])}{unit}" for s in series if s.points)
    summary = f"{title}: latest {last}; axis up to {_fmt(top, y_step)}{unit}."
    return _frame(title, summary, "".join(parts), width=width, height=height, kind="line")


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Svg:
    """One bar per label (few labels: a comparison, not a time series)."""
    if not bars:
        return empty(title, "no data yet", width=width, height=height)
    step = nice_step(max(max(v for _, v in bars), 0.0) or 1.0)
    top = axis_top(max(v for _, v in bars), step)
    left = _left([_fmt(v, step) + unit for v in value_ticks(0.0, top, step)], None)
    plot_w, plot_h = width - left - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(bars)
    parts = _y_axis(top, step, unit, width, height, left, BOTTOM)
    for i, (label, value) in enumerate(bars):
        h = max(value, 0.0) / top * plot_h
        x = left + slot * i + slot * 0.15
        parts.append(
            f'<rect class="bar series-{i % PALETTE_SIZE}" x="{x:.1f}" '
            f'y="{height - BOTTOM - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: "
            f"{escape(_fmt(value) + unit)}</title></rect>"
        )
        parts.append(
            f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{height - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    summary = f"{title}: " + ", ".join(f"{label} {_fmt(v)}{unit}" for label, v in bars) + "."
    return _frame(title, summary, "".join(parts), width=width, height=height, kind="bar")


def gauge(used: float, total: float, *, title: str, unit: str = "") -> Svg:
    """How much of `total` is left: a ring that empties as `used` grows."""
    width = height = 120
    share_left = 0.0 if total <= 0 else min(max((total - used) / total, 0.0), 1.0)
    radius, circumference = 48, 2 * math.pi * 48
    level = "low" if share_left < 0.1 else "mid" if share_left < 0.3 else "ok"
    body = (
        f'<circle class="gauge-track" cx="60" cy="60" r="{radius}"/>'
        f'<circle class="gauge-level gauge-{level}" cx="60" cy="60" r="{radius}" '
        f'stroke-dasharray="{circumference * share_left:.1f} {circumference:.1f}" '
        f'transform="rotate(-90 60 60)"/>'
        f'<text class="gauge-figure" x="60" y="58" text-anchor="middle">{share_left:.0%}</text>'
        f'<text class="gauge-label" x="60" y="76" text-anchor="middle">left</text>'
    )
    summary = (
        f"{title}: {_fmt(max(total - used, 0.0))}{unit} of {_fmt(total)}{unit} left "
        f"({share_left:.0%})."
    )
    return _frame(title, summary, body, width=width, height=height, kind="gauge")


def empty(title: str, message: str, *, width: int = WIDTH, height: int = HEIGHT) -> Svg:
    body = (
        f'<text class="chart-empty" x="{width / 2:.0f}" y="{height / 2:.0f}" '
        f'text-anchor="middle">{escape(message)}</text>'
    )
    return _frame(title, f"{title}: {message}.", body, width=width, height=height, kind="empty")
