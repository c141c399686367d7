"""Funder reports: what the facility delivered over a period, to whom, and at what energy.

Invariants: only the part of a usage fact that lies inside [period_start, period_end) counts.
An attempt that straddles an edge is clipped to the period and its GPU-seconds and energy are
scaled by the fraction of its wall time inside (an attempt of zero length counts whole when
it ends inside the period). Every figure — GPU-hours, utilisation, energy, organisations,
projects and jobs served — is taken from the same clipped facts, so they agree.

Vocabulary: *utilisation* is delivered GPU-seconds over offered GPU-seconds (facility GPUs ×
period length); a programme's *pool share* is its delivered share of all GPU-hours delivered
next to the share of capacity it was promised. Usage with no programme (metering only) is
shown under "(none)". Waiting-time percentiles are nearest-rank: the smallest observed wait
with at least p % of the waits at or below it (numpy's "inverted_cdf" method).

Access modes (domain.access_modes): *time to access* is, per mode with a service level, how
many proposals got access in the period, how many within their deadline, and the median working
days from the clock's start (submission; a Large Scale cut-off) to access. The *funding split*
is delivered GPU-hours by who funds the call the paying allocation came from: "eu" or
"national" (an allocation made outside any call is national); usage no allocation paid for is
"(none)".
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from aifactory.domain.access_modes import TimeToAccess, time_to_access
from aifactory.domain.money import HOUR_S
from aifactory.domain.statements import ReportInput, UsageFact

NO_PROGRAMME = "(none)"
JOULES_PER_KWH = 3.6e6
CHART_FORMATS = ("png", "svg")


@dataclass(frozen=True, slots=True)
class WaitStats:
    """How long the jobs that started in the period waited, in seconds."""

    jobs: int
    avg_s: float
    p50_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class PoolShare:
    """A programme's share of delivered GPU-hours next to its promised share of capacity."""

    delivered: float
    promised: float


@dataclass(frozen=True)
class FunderReport:
    period_start: float
    period_end: float
    jobs: int
    gpu_hours_total: float
    gpu_hours_by_programme: dict[str, float]
    gpu_hours_by_org_kind: dict[str, float]
    utilisation: float  # 0..1
    wait_by_programme: dict[str, WaitStats]
    organisations_served: int
    projects_served: int
    energy_kwh_measured: float
    energy_kwh_modelled: float
    co2_kg: float
    pool_share: dict[str, PoolShare]
    gpu_hours_by_funding: dict[str, float] = field(default_factory=dict)
    time_to_access: dict[str, TimeToAccess] = field(default_factory=dict)


# -- building -------------------------------------------------------------------------------


def build_report(data: ReportInput) -> FunderReport:
    """The report of `data`'s period; every dict is ordered by key."""
    if not data.period_start < data.period_end:
        raise ValueError("a report period must end after it starts")
    clipped = list(_clip(data))
    gpu_s = sum(fact.gpu_s * part for fact, part in clipped)
    by_programme = _hours_by(clipped, lambda f: _programme(f.programme))
    measured = sum(f.energy_j * part for f, part in clipped if f.energy_measured)
    modelled = sum(f.energy_j * part for f, part in clipped if not f.energy_measured)
    offered_s = data.facility_gpus * (data.period_end - data.period_start)
    energy_kwh = (measured + modelled) / JOULES_PER_KWH
    return FunderReport(
        period_start=data.period_start,
        period_end=data.period_end,
        jobs=len({f.job_id for f, _ in clipped}),
        gpu_hours_total=gpu_s / HOUR_S,
        gpu_hours_by_programme=by_programme,
        gpu_hours_by_org_kind=_hours_by(clipped, lambda f: f.org_kind),
        utilisation=gpu_s / offered_s if offered_s > 0 else 0.0,
        wait_by_programme=_waits(data),
        organisations_served=len({f.organisation for f, _ in clipped}),
        projects_served=len({f.project for f, _ in clipped}),
        energy_kwh_measured=measured / JOULES_PER_KWH,
        energy_kwh_modelled=modelled / JOULES_PER_KWH,
        co2_kg=energy_kwh * data.grid_g_per_kwh / 1000,
        pool_share=_pool_share(by_programme, data.promised_share),
        gpu_hours_by_funding=_hours_by(clipped, lambda f: f.funding or NO_PROGRAMME),
        time_to_access=time_to_access(data.access),
    )


def _programme(name: str) -> str:
    return name or NO_PROGRAMME


def _clip(data: ReportInput) -> Iterator[tuple[UsageFact, float]]:
    """Each fact that touches the period, with the fraction (0, 1] of it inside."""
    for fact in data.usage:
        length = fact.ended_at - fact.started_at
        if length <= 0:
            if data.period_start <= fact.ended_at < data.period_end:
                yield fact, 1.0
            continue
        inside = min(fact.ended_at, data.period_end) - max(fact.started_at, data.period_start)
        if inside > 0:
            yield fact, min(inside / length, 1.0)


def _hours_by(
    clipped: list[tuple[UsageFact, float]], key: Callable[[UsageFact], str]
) -> dict[str, float]:
    hours: dict[str, float] = defaultdict(float)
    for fact, part in clipped:
        hours[key(fact)] += fact.gpu_s * part / HOUR_S
    return dict(sorted(hours.items()))


def _waits(data: ReportInput) -> dict[str, WaitStats]:
    by_programme: dict[str, list[float]] = defaultdict(list)
    for wait in data.waits:
        by_programme[_programme(wait.programme)].append(wait.wait_s)
    return {name: _wait_stats(by_programme[name]) for name in sorted(by_programme)}


def _wait_stats(waits: list[float]) -> WaitStats:
    ordered = sorted(float(wait) for wait in waits)
    return WaitStats(
        jobs=len(ordered),
        avg_s=sum(ordered) / len(ordered),
        p50_s=nearest_rank(ordered, 50),
        p95_s=nearest_rank(ordered, 95),
    )


def nearest_rank(ordered: list[float], percent: int) -> float:
    """The nearest-rank percentile of a sorted, non-empty list: the ⌈p·n/100⌉-th value."""
    rank = max(1, (percent * len(ordered) + 99) // 100)
    return ordered[rank - 1]


def _pool_share(
    delivered_hours: dict[str, float], promised: dict[str, float]
) -> dict[str, PoolShare]:
    total = sum(delivered_hours.values())
    promised_by_name = {_programme(name): share for name, share in promised.items()}
    names = sorted(set(delivered_hours) | set(promised_by_name))
    return {
        name: PoolShare(
            delivered=delivered_hours.get(name, 0.0) / total if total > 0 else 0.0,
            promised=promised_by_name.get(name, 0.0),
        )
        for name in names
    }


# -- rendering --------------------------------------------------------------------------------


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _iso_moment(at: float) -> str:
    """ISO 8601 in UTC to the second, with a four-digit year: `strftime("%Y")` leaves out the
    leading zeros (glibc prints year 1 as "1"), so dates are made by `isoformat`."""
    return _utc(at).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso_day(at: float) -> str:
    return _utc(at).date().isoformat()


def _report_dict(report: FunderReport) -> dict[str, Any]:
    """The report as plain values in a fixed order, rounded as it is shown."""
    return {
        "period": {
            "start": _iso_moment(report.period_start),
            "end": _iso_moment(report.period_end),
        },
        "jobs": report.jobs,
        "organisations_served": report.organisations_served,
        "projects_served": report.projects_served,
        "gpu_hours_total": round(report.gpu_hours_total, 3),
        "gpu_hours_by_programme": _rounded(report.gpu_hours_by_programme, 3),
        "gpu_hours_by_org_kind": _rounded(report.gpu_hours_by_org_kind, 3),
        "utilisation": round(report.utilisation, 4),
        "energy_kwh_measured": round(report.energy_kwh_measured, 3),
        "energy_kwh_modelled": round(report.energy_kwh_modelled, 3),
        "co2_kg": round(report.co2_kg, 3),
        "wait_by_programme": {
            name: {
                "jobs": stats.jobs,
                "avg_s": round(stats.avg_s, 1),
                "p50_s": round(stats.p50_s, 1),
                "p95_s": round(stats.p95_s, 1),
            }
            for name, stats in report.wait_by_programme.items()
        },
        "pool_share": {
            name: {"delivered": round(share.delivered, 4), "promised": round(share.promised, 4)}
            for name, share in report.pool_share.items()
        },
        "gpu_hours_by_funding": _rounded(report.gpu_hours_by_funding, 3),
        "time_to_access": {
            mode: {
                "service_working_days": kept.service_days,
                "proposals": kept.proposals,
                "within": kept.within,
                "share_within": round(kept.share_within, 4),
                "median_working_days": kept.median_working_days,
            }
            for mode, kept in report.time_to_access.items()
        },
    }


def _rounded(values: dict[str, float], digits: int) -> dict[str, float]:
    return {key: round(value, digits) for key, value in values.items()}


def report_json(report: FunderReport) -> str:
    return json.dumps(_report_dict(report), indent=2, ensure_ascii=False) + "\n"


def report_csv(report: FunderReport) -> str:
    """One flat table of (metric, key, value); a nested figure's field joins its metric."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "key", "value"])
    writer.writerows(_flat_rows(_report_dict(report)))
    return out.getvalue()


def _flat_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for metric, value in figures.items():
        if not isinstance(value, dict):
            yield metric, "", value
            continue
        for key, item in value.items():
            if isinstance(item, dict):
                yield from ((f"{metric}.{field}", key, v) for field, v in item.items())
            else:
                yield metric, key, item


# -- charts -----------------------------------------------------------------------------------


def report_charts(report: FunderReport, out_dir: Path, fmt: str = "png") -> list[Path]:
    """Draw the report's charts into `out_dir` as PNG or SVG files; returns their paths."""
    _check_format(fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CHART_NAMES:
        path = out_dir / f"{name}.{fmt}"
        path.write_bytes(report_chart(report, name, fmt))
        paths.append(path)
    return paths


def report_chart(report: FunderReport, name: str, fmt: str = "png") -> bytes:
    """One of the report's charts (`CHART_NAMES`) as PNG or SVG bytes.

    Figures are drawn with `matplotlib.figure.Figure` (no pyplot, no global state).
    """
    _check_format(fmt)
    charts = {chart_name: (title, draw) for chart_name, title, draw in _CHARTS}
    if name not in charts:
        raise ValueError(f"chart must be one of {', '.join(CHART_NAMES)}, not {name!r}")
    title, draw = charts[name]
    figure = Figure(figsize=(7.0, 4.5), layout="constrained")
    axes = figure.add_subplot()
    draw(axes, report)
    axes.set_title(f"{title}\n{_period_label(report)}")
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    figure.savefig(out, format=fmt, dpi=110, metadata=metadata)
    return out.getvalue()


def _check_format(fmt: str) -> None:
    if fmt not in CHART_FORMATS:
        raise ValueError(f"chart format must be one of {', '.join(CHART_FORMATS)}, not {fmt!r}")


def _period_label(report: FunderReport) -> str:
    """The first and the last day covered (the period's end is exclusive)."""
    first = _iso_day(report.period_start)
    last = _iso_day(max(report.period_start, report.period_end - 1))
    return f"{first} – {last}"


def _no_usage(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no usage", ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _bars(axes: Axes, series: dict[str, list[float]], labels: list[str], ylabel: str) -> None:
    """Grouped bars: one group per label, one bar per series in it."""
    if not labels:
        _no_usage(axes)
        return
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        axes.bar([x + offset for x in range(len(labels))], values, width, label=name)
    axes.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        axes.legend()


def _draw_by_programme(axes: Axes, report: FunderReport) -> None:
    hours = report.gpu_hours_by_programme
    _bars(axes, {"GPU-hours": list(hours.values())}, list(hours), "GPU-hours")


def _draw_by_org_kind(axes: Axes, report: FunderReport) -> None:
    hours = report.gpu_hours_by_org_kind
    _bars(axes, {"GPU-hours": list(hours.values())}, list(hours), "GPU-hours")


def _draw_pool_share(axes: Axes, report: FunderReport) -> None:
    shares = report.pool_share
    series = {
        "delivered": [100 * s.delivered for s in shares.values()],
        "promised": [100 * s.promised for s in shares.values()],
    }
    _bars(axes, series, list(shares), "share of GPU-hours (%)")


def _draw_waits(axes: Axes, report: FunderReport) -> None:
    waits = report.wait_by_programme
    series = {
        "average": [s.avg_s / 60 for s in waits.values()],
        "p95": [s.p95_s / 60 for s in waits.values()],
    }
    _bars(axes, series, list(waits), "waiting time (min)")


_CHARTS: tuple[tuple[str, str, Callable[[Axes, FunderReport], None]], ...] = (
    ("gpu_hours_by_programme", "GPU-hours by programme", _draw_by_programme),
    ("gpu_hours_by_org_kind", "GPU-hours by organisation kind", _draw_by_org_kind),
    ("pool_share", "Pool share: delivered vs promised", _draw_pool_share),
    ("waiting_time", "Waiting time by programme", _draw_waits),
)
CHART_NAMES = tuple(name for name, _, _ in _CHARTS)
