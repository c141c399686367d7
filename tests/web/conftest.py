"""The portal's browser tests: Debian's Chromium, headless, driven by Playwright (no browser
download: `executable_path`), against a real facility process (`python -m aifactory up`).

Chromium missing is a failure, never a skip (`make test` installs it). Screenshots of the main
pages go to `test-artifacts/portal/` (AIFACTORY_TEST_ARTIFACTS moves the folder).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import LiveServer
from tests.e2e.process import FacilityProcess

ARTIFACTS = Path(os.environ.get("AIFACTORY_TEST_ARTIFACTS", "test-artifacts")) / "portal"
# As Debian's chromium runs in a closed network and as root in CI: no sandbox (root), no
# background calls home (they would be refused, and slow every start).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail("Debian's chromium is not installed: `make system-deps` installs it")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FacilityProcess]:
    """One facility (SQLite, local executor, 4 virtual GPUs) for a test module."""
    data_dir = tmp_path_factory.mktemp("portal")
    facility = FacilityProcess(data_dir, f"sqlite:///{data_dir / 'aifactory.db'}")
    facility.start()
    try:
        yield facility
    finally:
        facility.stop()
        facility.kill_leftover_jobs()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def axe_page(browser: Browser) -> Page:
    # axe is injected as an inline script, which the portal's own CSP (rightly) forbids.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    return context.new_page()


def api(portal: FacilityProcess, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{portal.url}/api/v1",
        headers={"Authorization": f"Bearer {token or portal.token}"},
        timeout=30,
    )


def sign_in(page: Page, portal: FacilityProcess, user: str = "admin", password: str = "") -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("User name", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password or str(portal.password))
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url(f"{portal.url}/")


def sign_in_with_token(page: Page, portal: FacilityProcess, token: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_role("textbox", name="API token").fill(token)
    page.locator("form[action='/login/token'] button").click()
    page.wait_for_url(f"{portal.url}/")


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG of what the browser shows, kept as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Page tests without a browser: the portal over the live API test server (tests.conftest).
from tests.api.conftest import admin, admin_headers, clients, tenants  # noqa: E402,F401

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PortalSession:
    """A signed-in browser, as plain HTTP: the session cookie, and the CSRF token from the
    last page read (every signed-in page carries one in its sign-out form)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        self.csrf = ""

    def sign_in(self, token: str) -> PortalSession:
        self.http.get("/login")
        login_csrf = self.http.cookies.get("aifactory_login", path="/login") or ""
        found = self.http.post(
            "/login/token", data={"token": token, "login_csrf": login_csrf, "next": "/"}
        )
        assert found.status_code == 303, found.text
        self.get("/account")
        return self

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.http.get(path, params=params)
        if token := CSRF.search(response.text):
            self.csrf = token.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def pages(live_server: LiveServer) -> Iterator[Callable[[str], PortalSession]]:
    """`pages(token)`: a PortalSession signed in with that API token."""
    opened: list[PortalSession] = []

    def make(token: str) -> PortalSession:
        session = PortalSession(live_server.url).sign_in(token)
        opened.append(session)
        return session

    yield make
    for session in opened:
        session.close()
