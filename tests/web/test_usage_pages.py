"""Usage and invoice pages over HTTP: the totals are the API's, each user sees their own
projects, invoices are issued through the form and downloaded as issued, as attachments."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from aifactory.domain.jobs import JobState
from aifactory.store.models import Project, User
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.services.money_rows import H, Metered, a_job, a_programme, an_allocation, run_attempt
from tests.web.conftest import PortalSession

Pages = Callable[[str], PortalSession]
MAR = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
FIGURES = ("total-gpu-hours", "total-energy", "total-co2", "total-cost", "total-net")


@pytest.fixture
def metered(live_server: LiveServer, tenants: Tenants) -> Tenants:
    """The tenants, fiona (finance), and usage in March 2025 paid from `pilot` (50 %):
    proj-a 2 GPUs × 2 h and 1 GPU × 1 h; proj-b 4 GPUs × 4 h."""
    tenants.tokens["fiona"] = tenants.admin.create_user("fiona", facility_role="finance")["token"]
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


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30) as client:
        yield client


def figures(html: str) -> dict[str, str]:
    found = dict(re.findall(r'id="(total-[\w-]+)">([^<]+)<', html))
    assert set(FIGURES) <= set(found), html
    return found


def project_rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="[^"]+">([\w-]+)</a>', html)


def euro(text: str) -> str:
    return "€ " + text


def test_the_usage_page_shows_the_apis_totals_for_the_same_period(
    pages: Pages, metered: Tenants, api: httpx.Client
) -> None:
    owen = pages(metered.tokens["owen"])
    by_month = owen.get("/usage", month="2025-03")
    by_days = owen.get("/usage", **{"from": "2025-03-01", "to": "2025-03-31"})
    totals = api.get(
        "/usage", params={"from": "2025-03-01", "to": "2025-04-01"}, headers=metered.headers("owen")
    ).json()["totals"]

    assert by_month.status_code == 200
    shown = figures(by_month.text)
    assert shown["total-gpu-hours"] == f"{totals['gpu_hours']:.2f}"
    assert shown["total-energy"] == f"{totals['energy_j'] / 3.6e6:.2f}"
    assert shown["total-co2"] == f"{totals['co2_g'] / 1000:.2f}"
    assert shown["total-cost"] == euro(totals["cost"])
    assert shown["total-net"] == euro(totals["net"])
    assert shown["total-records"] == str(totals["records"]) == "2"
    assert figures(by_days.text) == shown, "the same period chosen by days"
    assert project_rows(by_month.text) == ["proj-a"]
    assert 'role="img"' in by_month.text
    assert "GPU-hours per project, March 2025</title>" in by_month.text


def test_finance_sees_every_project_and_a_project_filter_narrows_it(
    pages: Pages, metered: Tenants, api: httpx.Client
) -> None:
    fiona = pages(metered.tokens["fiona"])
    everyone = fiona.get("/usage", month="2025-03")
    only_b = fiona.get("/usage", month="2025-03", project="proj-b")
    api_b = api.get(
        "/usage",
        params={"from": "2025-03-01", "to": "2025-04-01", "project": "proj-b"},
        headers=metered.headers("fiona"),
    ).json()["totals"]
    april = fiona.get("/usage", month="2025-04")

    assert project_rows(everyone.text) == ["proj-b", "proj-a"], "most GPU-hours first"
    assert figures(everyone.text)["total-cost"] == "€ 53.32"
    assert project_rows(only_b.text) == ["proj-b"]
    assert figures(only_b.text)["total-cost"] == euro(api_b["cost"])
    assert figures(april.text)["total-records"] == "0"
    assert "No job attempt ended in this period." in april.text


def test_the_period_and_project_are_checked(pages: Pages, metered: Tenants) -> None:
    alice = pages(metered.tokens["alice"])

    backwards = alice.get("/usage", **{"from": "2025-03-10", "to": "2025-03-01"})
    not_a_date = alice.get("/usage", **{"from": "March", "to": "2025-03-01"})
    bad_month = alice.get("/usage", month="2025-13")
    others = alice.get("/usage", month="2025-03", project="proj-b")

    assert backwards.status_code == 422
    assert 'id="to-error">the last day must not be before the first' in backwards.text
    assert not_a_date.status_code == 422
    assert 'id="from-error">must be a date' in not_a_date.text
    assert bad_month.status_code == 422
    assert 'id="month-error">month must be YYYY-MM' in bad_month.text
    assert others.status_code == 404


def test_finance_issues_an_invoice_with_the_form_and_members_download_it(
    pages: Pages, metered: Tenants
) -> None:
    fiona = pages(metered.tokens["fiona"])
    form = fiona.get("/usage/invoices")
    assert "Issue an invoice" in form.text
    assert '<option value="proj-a"' in form.text

    issued = fiona.post("/usage/invoices", {"project": "proj-a", "month": "2025-03"})
    again = fiona.post("/usage/invoices", {"project": "proj-a", "month": "2025-03"})
    vera = pages(metered.tokens["vera"])
    listing = vera.get("/usage/invoices")
    pdf = vera.get("/usage/invoices/proj-a/2025-03.pdf")
    csv = vera.get("/usage/invoices/proj-a/2025-03.csv")

    year = datetime.now(UTC).year
    number = f"AIF-{year}-000001"
    assert issued.status_code == 303
    assert issued.headers["location"] == f"/usage/invoices?issued={number}"
    assert again.headers["location"] == f"/usage/invoices?issued={number}&again=1"
    assert number in listing.text
    assert 'href="/usage/invoices/proj-a/2025-03.pdf"' in listing.text
    assert "Issue an invoice" not in listing.text, "members read invoices, never issue them"
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{number}.pdf"'
    assert pdf.content.startswith(b"%PDF")
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == f'attachment; filename="{number}.csv"'
    assert csv.text.splitlines()[-1] == "Total,,,,7.67"


def test_invoices_are_refused_to_whoever_may_not_read_them(pages: Pages, metered: Tenants) -> None:
    fiona = pages(metered.tokens["fiona"])
    fiona.get("/usage/invoices")
    assert fiona.post("/usage/invoices", {"project": "proj-a", "month": "2025-03"}).is_redirect

    olga = pages(metered.tokens["olga"])  # an operator: sees proj-a, may not read its invoices
    bob = pages(metered.tokens["bob"])  # proj-b only
    alice = pages(metered.tokens["alice"])
    alice.get("/usage/invoices")

    assert olga.get("/usage/invoices/proj-a/2025-03.pdf").status_code == 403
    assert olga.get("/usage/invoices").status_code == 403
    assert bob.get("/usage/invoices/proj-a/2025-03.pdf").status_code == 404
    assert bob.get("/usage/invoices/proj-a/2025-03.csv").status_code == 404
    assert "2025-03" not in bob.get("/usage/invoices").text
    assert alice.post("/usage/invoices", {"project": "proj-a", "month": "2025-03"}).status_code == (
        403
    )
    assert alice.get("/usage/invoices/proj-a/2025-02.pdf").status_code == 404


def test_the_issue_form_shows_the_services_refusals(pages: Pages, metered: Tenants) -> None:
    fiona = pages(metered.tokens["fiona"])
    fiona.get("/usage/invoices")
    now = datetime.now(UTC).strftime("%Y-%m")

    open_month = fiona.post("/usage/invoices", {"project": "proj-a", "month": now})
    no_project = fiona.post("/usage/invoices", {"project": "nope", "month": "2025-03"})

    assert open_month.status_code == 422
    assert f'id="month-error">month {now} is not closed yet' in open_month.text
    assert f'value="{now}"' in open_month.text
    assert no_project.status_code == 422
    assert 'id="project-error">no project named' in no_project.text


def test_finance_sees_invoices_of_projects_it_does_not_see_without_a_dead_link(
    pages: Pages, metered: Tenants
) -> None:
    fiona = pages(metered.tokens["fiona"])
    fiona.get("/usage/invoices")
    fiona.post("/usage/invoices", {"project": "proj-b", "month": "2025-03"})

    listing = fiona.get("/usage/invoices")

    assert "<td>proj-b</td>" in listing.text, "finance may not open the project's page"
    assert 'href="/usage/invoices/proj-b/2025-03.csv"' in listing.text
    assert fiona.get("/usage/invoices/proj-b/2025-03.csv").status_code == 200
