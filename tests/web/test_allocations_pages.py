"""The allocation pages over HTTP: each role sees the allocations it may, a burn-down drawn from
the ledger, alerts, and the adjust form for admins and finance only."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from aifactory.accounting import ledger
from aifactory.domain.ledger import EntryKind
from aifactory.services.allocation_detail import burn_entries
from aifactory.store.models import Allocation, AllocationAlert, Project, User
from aifactory.web.burndown import BURNING, running_balance
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.services.money_rows import H, Metered, a_job, a_programme, an_allocation, run_attempt
from tests.web.conftest import PortalSession

Pages = Callable[[str], PortalSession]
DAY = 86400.0
START = 1_735_689_600.0  # 2025-01-01 UTC


@pytest.fixture
def funded(live_server: LiveServer, tenants: Tenants) -> Tenants:
    """The tenants, fiona (finance), and allocations under `pilot`: a-pilot (proj-a: 1000 GPU-h
    awarded, a 2-GPU × 5 h job settled, an alert at 50 %) and b-pilot (proj-b)."""
    tenants.tokens["fiona"] = tenants.admin.create_user("fiona", facility_role="finance")["token"]
    with live_server.db.session() as s:
        a = s.scalars(select(Project).where(Project.name == "proj-a")).one()
        b = s.scalars(select(Project).where(Project.name == "proj-b")).one()
        owen = s.scalars(select(User.id).where(User.name == "owen")).one()
        pilot = a_programme(s)
        a_pays = an_allocation(s, "a-pilot", project_id=a.id, programme_id=pilot.id)
        b_pays = an_allocation(s, "b-pilot", project_id=b.id, programme_id=pilot.id)
        for allocation in (a_pays, b_pays):
            allocation.award_gpu_s = 1000 * 3600
            allocation.valid_from, allocation.valid_to = START, START + 100 * DAY
            ledger.post(
                s,
                allocation_id=allocation.id,
                kind=EntryKind.AWARD,
                gpu_ms=allocation.award_gpu_s * 1000,
                key=f"award:{allocation.id}",
                at=START,
                actor="admin",
                reason="granted",
            )
        job = a_job(s, project_id=a.id, user_id=owen, submitted_at=START + DAY)
        used = Metered(START + DAY, START + DAY + 5 * H, 2, 4, 2500, 10, 1250, 1e6)
        run_attempt(s, job, 1, used, a_pays)
        s.add(
            AllocationAlert(
                allocation_id=a_pays.id, threshold=50, at=START + 2 * DAY, message="half is used"
            )
        )
    return tenants


def figure_left(html: str) -> str:
    found = re.search(r'id="fig-left">([^<]+)<', html)
    assert found, html
    return found.group(1)


def test_members_see_their_projects_allocations_and_finance_sees_every_one(
    pages: Pages, funded: Tenants
) -> None:
    vera = pages(funded.tokens["vera"]).get("/allocations")
    fiona = pages(funded.tokens["fiona"]).get("/allocations")
    carol = pages(funded.tokens["carol"]).get("/allocations")

    assert vera.status_code == 200
    assert 'href="/allocations/a-pilot"' in vera.text
    assert "b-pilot" not in vera.text
    assert "990.0" in vera.text, "1000 GPU-h less 10 used"
    assert "<meter" in vera.text
    assert 'aria-label="a-pilot: share of GPU-hours left"' in vera.text
    assert {"a-pilot", "b-pilot"} <= set(re.findall(r'href="/allocations/([\w-]+)"', fiona.text))
    assert "No allocation you can see." in carol.text


def test_the_detail_draws_the_burn_down_with_the_ledger_and_alerts(
    pages: Pages, funded: Tenants
) -> None:
    owen = pages(funded.tokens["owen"])
    page = owen.get("/allocations/a-pilot")
    other = owen.get("/allocations/b-pilot")

    assert page.status_code == 200
    assert figure_left(page.text) == "990.0"
    chart = re.search(r"<svg[^>]*role=\"img\"[^>]*>.*?</svg>", page.text, re.DOTALL)
    assert chart, "an SVG chart"
    assert "<title" in chart.group(0)
    assert "a-pilot: GPU-hours left over time</title>" in chart.group(0)
    assert chart.group(0).count("<polyline") == 2, "the burn line and the ideal pace"
    assert "GPU-hours left 990 h" in chart.group(0)
    assert "50 % used" in page.text
    assert "half is used" in page.text
    assert page.text.count("<td>settle</td>") == 1
    assert "<td>award</td>" in page.text
    assert "Adjust the balance" not in page.text, "owners do not adjust balances"
    assert other.status_code == 404


def test_finance_adjusts_a_balance_with_the_form_and_the_line_follows(
    pages: Pages, funded: Tenants, live_server: LiveServer
) -> None:
    fiona = pages(funded.tokens["fiona"])
    form = fiona.get("/allocations/a-pilot")
    assert "Adjust the balance" in form.text
    assert '<label for="gpu_hours">' in form.text

    topped = fiona.post("/allocations/a-pilot/adjust", {"gpu_hours": "10.5", "reason": "bonus"})
    after = fiona.get("/allocations/a-pilot", adjusted="1")

    assert topped.status_code == 303
    assert topped.headers["location"] == "/allocations/a-pilot?adjusted=1"
    assert "The balance is adjusted." in after.text
    assert figure_left(after.text) == "1 000.5"
    assert "<td>bonus</td>" in after.text
    api = httpx.Client(base_url=f"{live_server.url}/api/v1", headers=funded.headers("fiona"))
    with api:
        ledger_api = api.get("/allocations/a-pilot/ledger").json()
        listed = api.get("/allocations", params={"project": "proj-a"})
    assert (ledger_api[-1]["kind"], ledger_api[-1]["reason"]) == ("adjust", "bonus")
    assert [a["left_gpu_hours"] for a in listed.json()] == [1000.5]


def test_the_adjust_form_shows_refusals_and_members_may_not_post_it(
    pages: Pages, funded: Tenants
) -> None:
    fiona = pages(funded.tokens["fiona"])
    fiona.get("/allocations/a-pilot")
    alice = pages(funded.tokens["alice"])
    alice.get("/allocations/a-pilot")

    no_reason = fiona.post("/allocations/a-pilot/adjust", {"gpu_hours": "5", "reason": " "})
    not_number = fiona.post("/allocations/a-pilot/adjust", {"gpu_hours": "lots", "reason": "x"})
    too_much = fiona.post("/allocations/a-pilot/adjust", {"gpu_hours": "-5000", "reason": "x"})
    refused = alice.post("/allocations/a-pilot/adjust", {"gpu_hours": "5", "reason": "please"})

    assert no_reason.status_code == 422
    assert 'id="reason-error">say why the balance changes' in no_reason.text
    assert 'value="5"' in no_reason.text, "what was typed is kept"
    assert not_number.status_code == 422
    assert 'id="gpu_hours-error">must be a number of GPU-hours' in not_number.text
    assert too_much.status_code == 422
    assert "would make it negative" in too_much.text
    assert refused.status_code == 403
    assert figure_left(fiona.get("/allocations/a-pilot").text) == "990.0"


def test_a_long_ledger_is_summed_per_slice_of_time_to_the_same_balances(
    funded: Tenants, live_server: LiveServer
) -> None:
    with live_server.db.session() as s:
        allocation = s.scalars(select(Allocation).where(Allocation.name == "a-pilot")).one()
        allocation_id = allocation.id
        for n in range(10):  # ten corrections within a second, fifty days in: one slice
            ledger.post(
                s,
                allocation_id=allocation_id,
                kind=EntryKind.ADJUST,
                gpu_ms=-3_600_000,
                key=f"adjust:{allocation_id}:{n + 1}",
                at=START + 50 * DAY + n / 10,
                actor="fiona",
                reason="correction",
            )
    with live_server.db.read() as s:
        allocation = s.get_one(Allocation, allocation_id)
        exact = running_balance(burn_entries(s, allocation, BURNING))
        sliced = running_balance(burn_entries(s, allocation, BURNING, max_exact=1))

    assert len(exact) == 12
    assert exact[:2] == [(START, 1000.0), (START + DAY + 5 * H, 990.0)]
    assert exact[-1] == (START + 50 * DAY + 0.9, 980.0)
    assert sliced[:2] == exact[:2]
    assert sliced[-1] == exact[-1]
    assert set(sliced) <= set(exact), "each slice ends on an exact balance"
    assert len(sliced) <= 4, "the corrections of one second share a slice or two"
