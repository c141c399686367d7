"""From a call to an allocation in a real browser: the project owner applies, a reviewer reviews,
the admin awards; then the audit log shows it and its chain holds.

Set up through the API as admin: organisation `uni-x` (a university, so the research
programme takes it), project proj-p owned by pia, reviewer rick (no project: no conflict of
interest), call c1 (1000 GPU-h). Each person signs in in a browser context of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in, sign_in_with_token

NOW = datetime.now(UTC)


def ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, object] = response.json()
    return body


def set_up(portal: FacilityProcess) -> dict[str, str]:
    """The world, and the new users' API tokens by name."""
    with api(portal) as admin:
        ok(admin.post("/organisations", json={"name": "uni-x", "kind": "university"}))
        tokens = {
            name: str(ok(admin.post("/users", json={"name": name, "facility_role": role}))["token"])
            for name, role in (("pia", "user"), ("rick", "reviewer"))
        }
        project = {"name": "proj-p", "organisation": "uni-x", "owner": "pia"}
        ok(admin.post("/projects", json=project))
        call = {
            "name": "c1",
            "programme": "research",
            "title": "Research call 2026",
            "opens_at": (NOW - timedelta(days=1)).isoformat(),
            "closes_at": (NOW + timedelta(days=30)).isoformat(),
            "budget_gpu_hours": 1000,
        }
        ok(admin.post("/calls", json=call))
    return tokens


def apply(page: Page, portal: FacilityProcess, token: str) -> int:
    """The owner applies through the form; the proposal's id."""
    sign_in_with_token(page, portal, token)
    page.get_by_role("link", name="Proposals", exact=True).click()
    page.get_by_role("link", name="Apply to c1").click()
    expect(page.get_by_role("heading", name="Apply for compute")).to_be_visible()
    expect(page.get_by_label("Project applying")).to_have_value("proj-p")
    page.get_by_label("Title", exact=True).fill("Dutch language model")
    page.get_by_label("Abstract").fill("A 7B model trained on Dutch text.")
    page.get_by_label("Justification of the GPU-hours").fill("Four runs of 60 GPU-hours.")
    page.get_by_label("GPU-hours asked").fill("-10")
    page.get_by_role("button", name="Submit the proposal").click()
    expect(page.locator("#requested_gpu_hours-error")).to_contain_text("must be above 0")
    page.get_by_label("GPU-hours asked").fill("240")
    page.get_by_role("button", name="Submit the proposal").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dutch language model")
    return int(page.url.rsplit("/", 1)[1])


def review(browser: Browser, portal: FacilityProcess, token: str, pid: int) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        sign_in_with_token(page, portal, token)
        page.goto(f"{portal.url}/proposals")
        page.get_by_role("link", name="Dutch language model").click()
        page.get_by_label("4 good").check()
        page.get_by_label("Comment for the applicant").fill("Clear plan; the runs are sized well.")
        page.get_by_label("I declare that I have no conflict of interest").check()
        page.get_by_role("button", name="Submit the review").click()
        row = page.get_by_role("row", name="rick")
        expect(row).to_contain_text("Clear plan")
        expect(row.get_by_role("cell").nth(0)).to_have_text("4")
    finally:
        context.close()


def award(browser: Browser, portal: FacilityProcess, pid: int) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, portal)
        page.goto(f"{portal.url}/proposals/{pid}")
        expect(page.get_by_text("Mean score 4.0 of 5")).to_be_visible()
        page.get_by_label("GPU-hours granted").fill("200")
        page.get_by_label("Guaranteed GPUs").fill("1")
        screenshot(page, "proposal-review")
        page.get_by_role("button", name="Award", exact=True).click()
        expect(page.locator("#allocation")).to_have_text("proj-p-c1")
        audit_log(page, portal)
    finally:
        context.close()


def audit_log(page: Page, portal: FacilityProcess) -> None:
    page.get_by_role("link", name="Audit log", exact=True).click()
    newest = page.get_by_role("row").nth(1)
    expect(newest).to_contain_text("proposal.award")
    page.get_by_role("button", name="Verify the hash chain").click()  # htmx: the notice only
    expect(page.locator("#chain-result")).to_contain_text("Chain intact up to seq")
    screenshot(page, "audit-log")
    page.get_by_label("Action", exact=True).fill("proposal.award")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row")).to_have_count(2)  # the header and the award


def test_an_owner_applies_a_reviewer_reviews_and_the_admin_awards_an_allocation(
    page: Page, browser: Browser, portal: FacilityProcess
) -> None:
    tokens = set_up(portal)
    pid = apply(page, portal, tokens["pia"])
    with api(portal) as admin:
        ok(admin.post(f"/proposals/{pid}/reviewers", json={"reviewer": "rick"}))
    review(browser, portal, tokens["rick"], pid)
    award(browser, portal, pid)
    with api(portal) as admin:
        (allocation,) = admin.get("/allocations", params={"project": "proj-p"}).json()
    assert (allocation["name"], allocation["proposal_id"]) == ("proj-p-c1", pid)
    assert (allocation["award_gpu_hours"], allocation["quota_gpus"]) == (200.0, 1)
    with api(portal, tokens["pia"]) as owner:
        shown = owner.get(f"/proposals/{pid}").json()
    assert shown["state"] == "awarded"
    assert [(r["score"], r["comment"]) for r in shown["reviews"]] == [
        (4, "Clear plan; the runs are sized well.")
    ]
