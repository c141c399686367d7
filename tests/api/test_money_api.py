"""Usage, invoices and funder reports over HTTP: money as exact text, invoices issued once and
served as issued, and each tenant seeing only their own."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import get_args

import httpx
import pypdf
import pytest
from sqlalchemy import select

from aifactory.accounting.reports import CHART_FORMATS, CHART_NAMES
from aifactory.api.deps import AppState
from aifactory.api.money_schemas import ChartFormat, ChartName
from aifactory.config import Settings
from aifactory.domain.jobs import JobState
from aifactory.domain.money import euro_text
from aifactory.store.models import Project, User
from tests.api.helpers import Tenants, assert_error, check_all
from tests.conftest import LiveServer
from tests.services.money_rows import H, Metered, a_job, a_programme, an_allocation, run_attempt

MARCH = "2025-03"
MAR = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
PERIOD = {"from": "2025-03-01", "to": "2025-04-01"}


@pytest.fixture
def money(live_server: LiveServer, tenants: Tenants) -> Tenants:
    """The tenants (see tests.api.helpers), fiona (finance), and usage in March 2025 paid from
    the `pilot` programme (50 % subsidy):

    - proj-a: 2 GPUs × 2 h (1000 + 16 cents, subsidy 508) and 1 GPU-h (250 + 2, subsidy 126)
    - proj-b: 4 GPUs × 4 h (4000 + 64 cents, subsidy 2032)
    """
    fiona = tenants.admin.create_user("fiona", facility_role="finance")["token"]
    tenants.tokens["fiona"] = fiona
    with live_server.db.session() as s:
        a = s.scalars(select(Project).where(Project.name == "proj-a")).one()
        b = s.scalars(select(Project).where(Project.name == "proj-b")).one()
        owen = s.scalars(select(User.id).where(User.name == "owen")).one()
        bob = s.scalars(select(User.id).where(User.name == "bob")).one()
        pilot = a_programme(s)
        a_pays = an_allocation(s, "a-pilot", project_id=a.id, programme_id=pilot.id)
        b_pays = an_allocation(s, "b-pilot", project_id=b.id, programme_id=pilot.id)
        a1, a2 = (a_job(s, project_id=a.id, user_id=owen, submitted_at=MAR) for _ in range(2))
        b1 = a_job(s, project_id=b.id, user_id=bob, submitted_at=MAR)
        start = MAR + 9 * DAY
        run_attempt(s, a1, 1, Metered(start, start + 2 * H, 2, 4, 1000, 16, 508, 5e6), a_pays)
        start = MAR + 19 * DAY
        used = Metered(start, start + H, 1, 1, 250, 2, 126, 2.52e6, measured=False)
        run_attempt(s, a2, 1, used, a_pays, end_state=JobState.FAILED)
        start = MAR + 4 * DAY
        run_attempt(s, b1, 1, Metered(start, start + 4 * H, 4, 8, 4000, 64, 2032, 1e7), b_pays)
    return tenants


def test_usage_lists_records_with_money_as_text(money: Tenants, api: httpx.Client) -> None:
    mine = api.get("/usage", params=PERIOD, headers=money.headers("owen"))
    everyone = api.get("/usage", params=PERIOD, headers=money.headers("fiona")).json()
    b_only = api.get("/usage", params={"project": "proj-b"}, headers=money.headers("fiona"))

    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert [(r["project"], r["gpus"], r["net"]) for r in body["records"]] == [
        ("proj-a", 2, "5.08"),
        ("proj-a", 1, "1.26"),
    ]
    first = body["records"][0]
    assert (first["allocation"], first["programme"], first["energy_source"]) == (
        "a-pilot",
        "pilot",
        "measured",
    )
    assert (first["cost"], first["subsidy"], first["gpu_hours"]) == ("10.16", "5.08", 4.0)
    assert first["started_at"] == "2025-03-10T00:00:00Z"
    assert body["totals"] == {
        "records": 2,
        "gpu_s": 18_000,
        "gpu_hours": 5.0,
        "cpu_s": 32_400,
        "energy_j": 7.52e6,
        "co2_g": pytest.approx(7.52e6 / 3.6e6 * 270.0),
        "cost": "12.68",
        "subsidy": "6.34",
        "net": "6.34",
    }
    assert everyone["totals"]["records"] == 3
    assert everyone["totals"]["cost"] == "53.32"
    assert [r["project"] for r in b_only.json()["records"]] == ["proj-b"]
    h = money.headers("alice")
    check_all(
        [
            ("other's", api.get("/usage", params={"project": "proj-b"}, headers=h), 404, "project"),
            ("bad from", api.get("/usage", params={"from": "March"}, headers=h), 422, "from"),
            (
                "backwards",
                api.get("/usage", params={"from": "2025-04-01", "to": "2025-03-01"}, headers=h),
                422,
                "to",
            ),
            ("no token", api.get("/usage"), 401, None),
        ]
    )


def test_an_invoice_is_issued_once_and_served_as_issued(money: Tenants, api: httpx.Client) -> None:
    year = datetime.now(UTC).year
    path = "/projects/proj-a/invoices"

    issued = api.post(path, json={"month": MARCH}, headers=money.headers("fiona"))
    pdf = api.get(f"{path}/{MARCH}.pdf", headers=money.headers("vera"))
    again = api.post(path, json={"month": MARCH}, headers=money.headers("fiona"))
    pdf_again = api.get(f"{path}/{MARCH}.pdf", headers=money.headers("fiona"))
    other = api.post(
        "/projects/proj-b/invoices", json={"month": MARCH}, headers=money.headers("fiona")
    )

    assert issued.status_code == 201, issued.text
    invoice = issued.json()
    assert invoice["number"] == f"AIF-{year}-000001"
    assert (invoice["project"], invoice["month"], invoice["issued_by"]) == (
        "proj-a",
        MARCH,
        "fiona",
    )
    assert [invoice[k] for k in ("gross", "subsidy", "net", "vat_pct", "vat", "total")] == [
        "12.68",
        "6.34",
        "6.34",
        21,
        "1.33",
        "7.67",
    ]
    assert [(line["description"], line["amount"]) for line in invoice["lines"]] == [
        ("GPU time h100, pilot programme", "12.50"),
        ("CPU time, pilot programme", "0.18"),
        ("Subsidy pilot programme (50 %)", "-6.34"),
    ]
    assert again.status_code == 200, again.text
    assert again.json() == invoice
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf_again.content == pdf.content
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert invoice["number"] in text
    assert euro_text(767) in text
    assert other.status_code == 201, other.text
    assert other.json()["number"] == f"AIF-{year}-000002"

    listed = api.get(path, headers=money.headers("vera")).json()
    shown = api.get(f"{path}/{MARCH}", headers=money.headers("alice")).json()
    table = api.get(f"{path}/{MARCH}.csv", headers=money.headers("fiona"))
    assert [i["number"] for i in listed] == [invoice["number"]]
    assert shown == invoice
    assert table.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(table.text)))[-1] == ["Total", "", "", "", "7.67"]


def test_invoices_refused(money: Tenants, api: httpx.Client) -> None:
    now = datetime.now(UTC)
    this_month = now.strftime("%Y-%m")
    path = "/projects/proj-a/invoices"
    fiona, owen, alice, bob = (money.headers(n) for n in ("fiona", "owen", "alice", "bob"))
    assert api.post(path, json={"month": MARCH}, headers=fiona).status_code == 201

    early = api.post(path, json={"month": this_month}, headers=fiona)
    assert_error(early, 422, "month", reason=f"month {this_month} is not closed yet")
    check_all(
        [
            ("an owner", api.post(path, json={"month": MARCH}, headers=owen), 403, None),
            ("a member", api.post(path, json={"month": MARCH}, headers=alice), 403, None),
            ("not a member", api.post(path, json={"month": MARCH}, headers=bob), 403, None),
            ("read by another", api.get(f"{path}/{MARCH}", headers=bob), 404, "project"),
            ("pdf by another", api.get(f"{path}/{MARCH}.pdf", headers=bob), 404, "project"),
            ("list by another", api.get(path, headers=bob), 404, "project"),
            ("not issued", api.get(f"{path}/2025-02", headers=owen), 404, "month"),
            ("not issued, csv", api.get(f"{path}/2025-02.csv", headers=owen), 404, "month"),
            ("malformed", api.post(path, json={"month": "2025-3"}, headers=fiona), 422, "month"),
            ("malformed read", api.get(f"{path}/2025-03.txt", headers=owen), 422, "month"),
            ("no month", api.post(path, json={}, headers=fiona), 422, "month"),
        ]
    )


def test_the_funder_report_for_finance(money: Tenants, api: httpx.Client) -> None:
    fiona = money.headers("fiona")

    response = api.get("/reports/funder", params=PERIOD, headers=fiona)
    table = api.get("/reports/funder", params={**PERIOD, "format": "csv"}, headers=fiona)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["period"] == {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"}
    assert report["gpu_hours_by_programme"] == {"pilot": 21.0}
    assert report["gpu_hours_by_org_kind"] == {"university": 21.0}
    assert (report["jobs"], report["organisations_served"], report["projects_served"]) == (3, 1, 2)
    assert report["energy_kwh_measured"] == round(15e6 / 3.6e6, 3)
    assert report["energy_kwh_modelled"] == 0.7
    assert report["wait_by_programme"]["pilot"]["jobs"] == 3
    assert table.headers["content-type"].startswith("text/csv")
    assert ["gpu_hours_by_programme", "pilot", "21.0"] in list(csv.reader(io.StringIO(table.text)))
    h = money.headers("alice")
    check_all(
        [
            ("a member", api.get("/reports/funder", params=PERIOD, headers=h), 403, None),
            ("no period", api.get("/reports/funder", headers=fiona), 422, "from"),
            (
                "empty period",
                api.get(
                    "/reports/funder",
                    params={"from": "2025-03-01", "to": "2025-03-01"},
                    headers=fiona,
                ),
                422,
                "to",
            ),
            (
                "format",
                api.get("/reports/funder", params={**PERIOD, "format": "xls"}, headers=fiona),
                422,
                "format",
            ),
        ]
    )


def test_funder_charts(money: Tenants, api: httpx.Client) -> None:
    charts = "/reports/funder/charts"
    olga = money.headers("olga")

    png = api.get(f"{charts}/gpu_hours_by_programme.png", params=PERIOD, headers=olga)
    svg = api.get(f"{charts}/waiting_time.svg", params=PERIOD, headers=olga)

    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    check_all(
        [
            ("chart", api.get(f"{charts}/pie.png", params=PERIOD, headers=olga), 422, "chart"),
            (
                "format",
                api.get(f"{charts}/pool_share.gif", params=PERIOD, headers=olga),
                422,
                "fmt",
            ),
            (
                "a member",
                api.get(f"{charts}/pool_share.png", params=PERIOD, headers=money.headers("owen")),
                403,
                None,
            ),
        ]
    )


def test_the_api_offers_the_charts_and_settings_the_facility_has() -> None:
    assert get_args(ChartName) == CHART_NAMES
    assert get_args(ChartFormat) == CHART_FORMATS
    defaults = {name: Settings.model_fields[name].default for name in ("vat_pct", "grid_g_per_kwh")}
    state = AppState.__dataclass_fields__
    assert {name: state[name].default for name in defaults} == defaults
