"""Funder reports: hand-computed figures on a small month, clipping at its edges, renderings."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from aifactory.accounting.reports import (
    FunderReport,
    PoolShare,
    WaitStats,
    build_report,
    nearest_rank,
    report_charts,
    report_csv,
    report_json,
)
from aifactory.domain.access_modes import AccessFact, AccessMode
from aifactory.domain.statements import ReportInput, UsageFact, WaitFact

HOUR = 3600.0
KWH = 3.6e6  # J
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
END = 1_769_904_000.0  # 2026-02-01T00:00:00Z
MONTH_S = 31 * 24 * HOUR


def a_fact(
    job_id: int,
    project: str,
    organisation: str,
    org_kind: str,
    programme: str,
    *,
    gpus: int,
    start: float,
    end: float,
    kwh: float,
    measured: bool = True,
) -> UsageFact:
    return UsageFact(
        job_id=job_id,
        project=project,
        organisation=organisation,
        org_kind=org_kind,
        programme=programme,
        gpu_model="h100",
        gpu_s=gpus * (end - start),
        energy_j=kwh * KWH,
        energy_measured=measured,
        started_at=start,
        ended_at=end,
    )


USAGE = (
    # 4 GPUs × 2 h, research; 2 kWh measured.
    a_fact(1, "p-uni", "Uni A", "university", "research", gpus=4, start=START + HOUR,
           end=START + 3 * HOUR, kwh=2.0),
    # The same job's second attempt: 4 GPUs × 1 h; 1 kWh modelled.
    a_fact(1, "p-uni", "Uni A", "university", "research", gpus=4, start=START + 4 * HOUR,
           end=START + 5 * HOUR, kwh=1.0, measured=False),
    # Another project of the same organisation: 1 GPU × 1 h, no energy.
    a_fact(5, "p-uni-2", "Uni A", "university", "research", gpus=1, start=START + 10 * HOUR,
           end=START + 11 * HOUR, kwh=0.0),
    # Straddles the start: 2 GPUs × 1 h of which half is inside → 1 GPU-h, 0.5 of 1 kWh.
    a_fact(2, "p-start", "StartCo", "startup", "startup", gpus=2, start=START - HOUR / 2,
           end=START + HOUR / 2, kwh=1.0, measured=False),
    # Metering only, ends exactly at the (exclusive) end: 1 GPU × 1 h inside, 0.5 kWh measured.
    a_fact(3, "p-sme", "SME GmbH", "sme", "", gpus=1, start=END - HOUR, end=END, kwh=0.5),
    # Starts at the end: wholly outside, counts for nothing.
    a_fact(4, "p-late", "Late Ltd", "commercial", "commercial", gpus=8, start=END,
           end=END + HOUR, kwh=9.0),
)  # fmt: skip

WAITS = (
    *(WaitFact("research", w) for w in (10.0, 20.0, 30.0, 40.0, 1000.0)),
    WaitFact("startup", 5.0),
    WaitFact("", 60.0),
    WaitFact("", 120.0),
)

INPUT = ReportInput(
    period_start=START,
    period_end=END,
    facility_gpus=8,
    grid_g_per_kwh=250.0,
    promised_share={"research": 0.6, "startup": 0.3, "sme": 0.1},
    usage=USAGE,
    waits=WAITS,
)


@pytest.fixture(scope="module")
def report() -> FunderReport:
    return build_report(INPUT)


def test_gpu_hours_are_clipped_to_the_period(report: FunderReport) -> None:
    # research 8 + 4 + 1, startup 1 of 2 (half inside), metering only 1; the late job 0.
    assert report.gpu_hours_total == pytest.approx(15.0)
    assert report.gpu_hours_by_programme == pytest.approx(
        {"(none)": 1.0, "research": 13.0, "startup": 1.0}
    )
    assert list(report.gpu_hours_by_programme) == ["(none)", "research", "startup"]
    assert report.gpu_hours_by_org_kind == pytest.approx(
        {"sme": 1.0, "startup": 1.0, "university": 13.0}
    )


def test_utilisation_is_delivered_over_offered(report: FunderReport) -> None:
    assert report.utilisation == pytest.approx(15 * HOUR / (8 * MONTH_S))


def test_who_was_served(report: FunderReport) -> None:
    assert report.jobs == 4  # jobs 1 (two attempts), 2, 3 and 5
    assert report.organisations_served == 3  # Uni A, StartCo, SME GmbH
    assert report.projects_served == 4


def test_energy_and_co2(report: FunderReport) -> None:
    assert report.energy_kwh_measured == pytest.approx(2.0 + 0.5)
    assert report.energy_kwh_modelled == pytest.approx(1.0 + 0.5)
    assert report.co2_kg == pytest.approx(4.0 * 250 / 1000)


def test_waits_are_nearest_rank_per_programme(report: FunderReport) -> None:
    assert report.wait_by_programme == {
        "(none)": WaitStats(jobs=2, avg_s=90.0, p50_s=60.0, p95_s=120.0),
        "research": WaitStats(jobs=5, avg_s=220.0, p50_s=30.0, p95_s=1000.0),
        "startup": WaitStats(jobs=1, avg_s=5.0, p50_s=5.0, p95_s=5.0),
    }


def test_pool_share_delivered_against_promised(report: FunderReport) -> None:
    assert report.pool_share == {
        "(none)": PoolShare(delivered=pytest.approx(1 / 15), promised=0.0),
        "research": PoolShare(delivered=pytest.approx(13 / 15), promised=0.6),
        "sme": PoolShare(delivered=0.0, promised=0.1),
        "startup": PoolShare(delivered=pytest.approx(1 / 15), promised=0.3),
    }


@pytest.mark.parametrize("n", range(1, 41))
@pytest.mark.parametrize("percent", [50, 95])
def test_nearest_rank_is_numpys_inverted_cdf(n: int, percent: int) -> None:
    values = [float(v * v) for v in range(n)]

    expected = np.percentile(values, percent, method="inverted_cdf")
    assert nearest_rank(values, percent) == expected


def test_zero_length_attempt_counts_where_it_ends() -> None:
    inside = a_fact(7, "p", "o", "university", "research", gpus=1, start=START, end=START, kwh=0)
    at_end = a_fact(8, "q", "o", "university", "research", gpus=1, start=END, end=END, kwh=0)

    report = build_report(ReportInput(START, END, 8, 250.0, usage=(inside, at_end)))

    assert (report.jobs, report.projects_served) == (1, 1)


def test_an_empty_period_is_all_zeros() -> None:
    report = build_report(ReportInput(START, END, 0, 250.0))

    assert (report.gpu_hours_total, report.utilisation, report.co2_kg, report.jobs) == (0, 0, 0, 0)
    assert report.gpu_hours_by_programme == report.pool_share == report.wait_by_programme == {}


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="period"):
        build_report(ReportInput(END, START, 8, 250.0))


def test_json_is_stable_and_rounded(report: FunderReport) -> None:
    text = report_json(report)

    figures = json.loads(text)
    assert text == report_json(build_report(INPUT))
    assert list(figures)[:3] == ["period", "jobs", "organisations_served"]
    assert figures["period"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}
    assert figures["gpu_hours_total"] == 15.0
    assert figures["utilisation"] == round(15 / (8 * 31 * 24), 4) == 0.0025
    assert figures["pool_share"]["research"] == {"delivered": 0.8667, "promised": 0.6}
    assert figures["wait_by_programme"]["research"]["p95_s"] == 1000.0
    assert figures["co2_kg"] == 1.0


YEAR_1 = datetime(1, 1, 1, tzinfo=UTC).timestamp()  # a report asked `from=0001-01-01`


def test_dates_are_iso_8601_with_four_digit_years(tmp_path: Path) -> None:
    """`strftime("%Y")` printed year 1 as "1"; ISO 8601 wants "0001"."""
    since_year_1 = build_report(ReportInput(YEAR_1, END, 8, 250.0, usage=USAGE))

    assert json.loads(report_json(since_year_1))["period"] == {
        "start": "0001-01-01T00:00:00Z",
        "end": "2026-02-01T00:00:00Z",
    }
    rows = list(csv.reader(io.StringIO(report_csv(since_year_1))))
    assert ["period", "start", "0001-01-01T00:00:00Z"] in rows
    (svg,) = [
        path.read_text()
        for path in report_charts(since_year_1, tmp_path, fmt="svg")
        if path.stem == "pool_share"
    ]
    assert "0001-01-01 – 2026-01-31" in svg


def test_csv_is_one_flat_table(report: FunderReport) -> None:
    rows = list(csv.reader(io.StringIO(report_csv(report))))

    assert rows[0] == ["metric", "key", "value"]
    assert all(len(row) == 3 for row in rows)
    by_metric = {(metric, key): value for metric, key, value in rows[1:]}
    assert by_metric[("gpu_hours_total", "")] == "15.0"
    assert by_metric[("gpu_hours_by_programme", "(none)")] == "1.0"
    assert by_metric[("gpu_hours_by_org_kind", "university")] == "13.0"
    assert by_metric[("wait_by_programme.p50_s", "research")] == "30.0"
    assert by_metric[("pool_share.promised", "sme")] == "0.1"
    assert by_metric[("energy_kwh_measured", "")] == "2.5"


NAMES = ["gpu_hours_by_programme", "gpu_hours_by_org_kind", "pool_share", "waiting_time"]


def test_png_charts(report: FunderReport, tmp_path: Path) -> None:
    paths = report_charts(report, tmp_path / "charts")

    assert [p.name for p in paths] == [f"{name}.png" for name in NAMES]
    for path in paths:
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert path.stat().st_size > 1000


def test_svg_charts_of_an_empty_period_say_no_usage(tmp_path: Path) -> None:
    empty = build_report(ReportInput(START, END, 8, 250.0))

    paths = report_charts(empty, tmp_path, fmt="svg")

    assert [p.name for p in paths] == [f"{name}.svg" for name in NAMES]
    for path in paths:
        svg = path.read_text()
        assert svg.startswith("<?xml")
        assert "<svg" in svg
        # matplotlib draws text as paths and names each text in a comment.
        assert "no usage" in svg
        assert "2026-01-01 – 2026-01-31" in svg


def test_unknown_chart_format_is_refused(report: FunderReport, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="png, svg"):
        report_charts(report, tmp_path, fmt="gif")


def test_the_funding_split_and_time_to_access_per_mode() -> None:
    eu = replace(USAGE[0], funding="eu")  # 8 GPU-h
    national = replace(USAGE[2], funding="national")  # 1 GPU-h
    # Fast Lane, submitted Friday 2 Jan 2026 (clock starts that day): 4 working days to
    # Thursday 8 Jan; access on Wednesday 7 Jan is within, on Friday 9 Jan is late.
    submitted = START + 24 * HOUR + 9 * HOUR
    due = 1_767_913_200.0  # 2026-01-09T00:00+01:00: the end of Thursday 8 January
    access = tuple(  # Wednesday is the 3rd working day, Friday the 5th
        AccessFact(AccessMode.FAST_LANE, submitted, at, due, days)
        for at, days in (
            (START + 6 * 24 * HOUR + 12 * HOUR, 3),
            (START + 8 * 24 * HOUR + 12 * HOUR, 5),
        )
    )
    data = ReportInput(START, END, 10, 0.0, usage=(eu, national, USAGE[4]), access=access)
    report = build_report(data)
    assert report.gpu_hours_by_funding == {"(none)": 1.0, "eu": 8.0, "national": 1.0}
    kept = report.time_to_access["fast_lane"]
    assert (kept.service_days, kept.proposals, kept.within) == (4, 2, 1)
    assert kept.median_working_days == 4.0
    figures = json.loads(report_json(report))
    assert figures["time_to_access"]["fast_lane"]["share_within"] == 0.5
    assert figures["gpu_hours_by_funding"]["eu"] == 8.0
