"""Signing in through a real browser, and the dashboard's charts drawn."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in, sign_in_with_token


def test_the_printed_password_signs_in_and_the_dashboard_draws_its_charts(
    page: Page, portal: FacilityProcess
) -> None:
    page.goto(portal.url)
    expect(page).to_have_url(f"{portal.url}/login")
    sign_in(page, portal)
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    utilisation = page.get_by_role("img", name="Facility GPU utilisation")
    expect(utilisation).to_be_visible()
    box = utilisation.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 80
    expect(page.get_by_role("img", name="default-starter: GPU-hours left")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "aifactory_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    screenshot(page, "dashboard")


def test_a_wrong_password_is_refused_with_a_message_and_no_session(
    page: Page, portal: FacilityProcess
) -> None:
    sign_in_page = f"{portal.url}/login"
    page.goto(sign_in_page)
    page.get_by_label("User name", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill("not the password at all")
    page.get_by_role("button", name="Sign in").first.click()
    expect(page.get_by_role("alert")).to_have_text("unknown user name or wrong password")
    assert not [c for c in page.context.cookies() if c["name"] == "aifactory_session"]


def test_an_api_token_signs_in_and_sign_out_ends_the_session(
    page: Page, portal: FacilityProcess
) -> None:
    assert portal.token
    sign_in_with_token(page, portal, portal.token)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{portal.url}/login")
    page.goto(f"{portal.url}/account")
    expect(page).to_have_url(f"{portal.url}/login?next=/account")
    with api(portal) as client:
        events = client.get("/audit", params={"action": "auth.sign_in"}).json()
    assert {e["object"] for e in events} >= {"portal:token"}, "sign-ins are in the audit log"
