"""Accessibility in a real browser: axe-core finds no serious or critical violation on the
portal's main pages, the keyboard alone signs in and reaches the content, and a member sees
neither another project's job nor the menus of roles they lack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in, sign_in_with_token

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
PAGES = [
    "/",
    "/jobs",
    "/jobs/new",
    "/nodes",
    "/projects",
    "/projects/default",
    "/allocations",
    "/allocations/default-starter",
    "/proposals",
    "/usage",
    "/usage/invoices",
    "/datasets",
    "/audit",
    "/whatif",
    "/account",
    "/account/notifications",
]


def violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        where: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return found


def test_the_main_pages_have_no_serious_accessibility_violations(
    axe_page: Page, portal: FacilityProcess
) -> None:
    with api(portal) as admin:
        job = admin.post("/jobs", json={"command": ["true"]}).json()
    axe_page.goto(f"{portal.url}/login")
    assert violations(axe_page) == [], "/login"
    sign_in(axe_page, portal)
    found = {}
    for path in [*PAGES, f"/jobs/{job['id']}"]:
        axe_page.goto(f"{portal.url}{path}")
        found[path] = violations(axe_page)
    assert {path: v for path, v in found.items() if v} == {}
    axe_page.context.close()


def test_the_keyboard_alone_signs_in_and_skips_to_the_content(
    page: Page, portal: FacilityProcess
) -> None:
    page.goto(f"{portal.url}/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="aifactory")).to_be_focused()  # the home link
    page.keyboard.press("Tab")
    expect(page.get_by_label("User name", exact=True)).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(str(portal.password))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{portal.url}/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    expect(page.locator("main")).to_be_focused()


def test_a_member_sees_only_their_project_and_not_another_projects_job(
    page: Page, portal: FacilityProcess
) -> None:
    with api(portal) as admin:
        admin.post("/organisations", json={"name": "lab-org", "kind": "university"})
        token = admin.post("/users", json={"name": "mia", "token": True}).json()["token"]
        admin.post(
            "/projects", json={"name": "mias-lab", "organisation": "lab-org", "owner": "mia"}
        )
        theirs = admin.post("/jobs", json={"command": ["true"], "name": "not-for-mia"}).json()
    sign_in_with_token(page, portal, token)
    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Jobs")).to_be_visible()
    expect(menu.get_by_role("link", name="Audit log")).to_be_visible()  # her own project's
    expect(menu.get_by_role("link", name="What-if")).to_have_count(0)
    response = page.goto(f"{portal.url}/jobs/{theirs['id']}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{portal.url}/jobs")
    expect(page.get_by_text("not-for-mia")).to_have_count(0)
    screenshot(page, "member-refused")
