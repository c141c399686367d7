"""Interactive sessions in a real browser on a real facility (`aifactory up`, local executor,
virtual GPUs): a session started with the portal's form on a GPU and a granted dataset runs
JupyterLab in its sandbox; its page follows it (htmx) until it answers; Open lands on JupyterLab
on the session's own origin (`s<ID>.localhost`), where a notebook cell sees its GPU and reads
its dataset. A browser that is not signed in is sent to sign in; a user of another project is
told the session does not exist. Stopping it with its button ends it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in, sign_in_with_token
from tests.web.test_accessibility_browser import violations

SESSION_PAGE = re.compile(r"/sessions/(\d+)$")
BOOK = "Het was een koude winter in Amsterdam."
CELL = (
    "import os\n"
    'data = os.environ["AIFACTORY_DATASET_NL_BOOKS"]\n'
    'print("gpus:", os.environ["CUDA_VISIBLE_DEVICES"])\n'
    'print("book:", open(os.path.join(data, "book.txt")).read())'
)


@dataclass(frozen=True)
class Started:
    id: int
    origin: str  # the session's own: http://s<ID>.localhost:<port>


@pytest.fixture(scope="module")
def books(portal: FacilityProcess) -> str:
    """A dataset registered on the facility and granted to its default project."""
    files = portal.data_dir / "datasets" / "nl-books" / "v1"
    files.mkdir(parents=True)
    (files / "book.txt").write_text(BOOK + "\n")
    until = datetime.now(UTC) + timedelta(days=365)
    with portal.client() as admin:
        admin.register_dataset(
            "nl-books",
            path="nl-books/v1",
            classification="public",
            residency="NL",
            retention_until=until,
            licence="public domain",
            controller="AI Factory NL",
            processor="AI Factory NL",
            purposes=["language modelling"],
        )
        admin.grant_dataset(
            "nl-books", project="default", purpose="language modelling", until=until
        )
    return "nl-books"


@pytest.fixture(scope="module")
def admin_page(browser: Browser) -> Iterator[Page]:
    """One signed-in browser for the module: the session it starts is opened in a popup."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def started(admin_page: Page, portal: FacilityProcess, books: str) -> Started:
    """A JupyterLab session on 1 GPU and the dataset, started with the form and running."""
    page = admin_page
    sign_in(page, portal)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
    expect(page.get_by_role("heading", name="Start a session")).to_be_visible()
    page.get_by_label("GPUs", exact=True).fill("1")
    page.get_by_label("Memory (MiB)").fill("2048")
    page.get_by_label("Time limit").fill("1h")
    page.get_by_label("Idle timeout, in minutes").fill("30")
    page.get_by_label("Datasets (optional)").fill(books)
    page.get_by_role("button", name="Start session").click()
    expect(page).to_have_url(SESSION_PAGE)
    found = SESSION_PAGE.search(page.url)
    assert found
    session_id = int(found.group(1))
    expect(page.locator("#session-state")).to_have_text("RUNNING", timeout=60_000)
    expect(page.get_by_text("answers", exact=True)).to_be_visible(timeout=90_000)
    screenshot(page, "session-page")
    return Started(session_id, f"http://s{session_id}.localhost:{portal.port}")


def test_open_lands_on_jupyterlab_on_the_sessions_origin_and_a_cell_sees_its_gpu_and_data(
    admin_page: Page, portal: FacilityProcess, started: Started
) -> None:
    page = admin_page
    page.goto(f"{portal.url}/sessions/{started.id}")
    with page.context.expect_page() as opening:
        page.get_by_role("link", name="Open").click()
    lab = opening.value
    # first whose session the link opens, and as whom: its button goes on
    expect(lab.get_by_role("heading", name=f"Open session {started.id}?")).to_be_visible()
    expect(lab.get_by_text("signed in as admin")).to_be_visible()
    lab.get_by_role("button", name="Open").click()
    lab.wait_for_url(f"{started.origin}/sessions/{started.id}/lab**", timeout=60_000)
    expect(lab.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)

    lab.locator(".jp-LauncherCard[data-category='Notebook']").first.click()  # Python 3
    expect(lab.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    cell = lab.locator(".jp-Notebook .jp-CodeCell").first
    cell.locator(".cm-content").fill(CELL)  # as pasted: no brackets closed for us
    cell.locator(".cm-content").press("Shift+Enter")
    output = cell.locator(".jp-OutputArea-output")
    expect(output).to_contain_text(f"book: {BOOK}", timeout=60_000)
    gpus = re.search(r"gpus: (\S+)", output.inner_text())
    assert gpus, output.inner_text()
    assert len(gpus.group(1).split(",")) == 1, "the one GPU it asked for"
    screenshot(lab, "session-notebook")

    with api(portal) as client:
        seen = client.get(f"/sessions/{started.id}").json()
    assert (seen["gpus"], seen["datasets"], seen["ready"]) == (1, ["nl-books"], True)
    lab.close()


def test_a_browser_that_is_not_signed_in_is_sent_to_sign_in(
    page: Page, portal: FacilityProcess, started: Started
) -> None:
    page.goto(f"{started.origin}/sessions/{started.id}/lab")
    expect(page).to_have_url(re.compile(r"/login\?next=/sessions/\d+/open$"))
    landed = urlsplit(page.url)
    assert (landed.port, landed.path) == (portal.port, "/login"), page.url
    assert landed.query == f"next=/sessions/{started.id}/open"
    expect(page.get_by_label("User name", exact=True)).to_be_visible()
    # The facility's address with the session's name: Playwright's request API and httpx
    # resolve names as the OS does, and glibc knows no *.localhost (Chromium resolves those
    # itself, to the loopback).
    jupyter = httpx.get(
        f"{portal.url}/sessions/{started.id}/api/contents",
        headers={"Host": f"s{started.id}.localhost:{portal.port}"},
        timeout=30,
    )
    assert jupyter.status_code == 401


def test_a_user_of_another_project_is_told_the_session_does_not_exist(
    page: Page, portal: FacilityProcess, started: Started
) -> None:
    with api(portal) as admin:
        admin.post("/organisations", json={"name": "other-org", "kind": "university"})
        token = admin.post("/users", json={"name": "otto", "token": True}).json()["token"]
        admin.post(
            "/projects", json={"name": "ottos-lab", "organisation": "other-org", "owner": "otto"}
        )
    sign_in_with_token(page, portal, token)
    for path in ("/open", ""):
        response = page.goto(f"{portal.url}/sessions/{started.id}{path}")
        assert response is not None
        assert response.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{portal.url}/sessions")
    expect(page.get_by_text("No sessions yet.")).to_be_visible()


def test_stop_asks_first_then_ends_the_session(
    admin_page: Page, portal: FacilityProcess, started: Started
) -> None:
    page = admin_page
    page.goto(f"{portal.url}/sessions/{started.id}")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#session-state")).to_have_text("CANCELLED", timeout=60_000)
    assert [q.split("?")[0] for q in asked] == [f"Stop session {started.id}"]
    expect(page.get_by_role("link", name="Open")).to_have_count(0)
    with api(portal) as client:
        job = client.get(f"/jobs/{started.id}").json()
    assert job["state"] == "CANCELLED"
    page.goto(f"{portal.url}/sessions")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=str(started.id)))
    expect(row.locator(".state-CANCELLED")).to_have_text("CANCELLED")
    screenshot(page, "sessions-list")


def test_the_sessions_pages_have_no_serious_accessibility_violations(
    axe_page: Page, portal: FacilityProcess, started: Started
) -> None:
    sign_in(axe_page, portal)
    axe_page.goto(f"{portal.url}/sessions")
    axe_page.get_by_label("Idle timeout, in minutes").fill("0")
    axe_page.get_by_role("button", name="Start session").click()
    expect(axe_page.locator("#idle_timeout-error")).to_contain_text("minutes")
    found = {"start form refused": violations(axe_page)}
    axe_page.goto(f"{portal.url}/sessions/{started.id}")
    found["session"] = violations(axe_page)
    assert {page: v for page, v in found.items() if v} == {}
    axe_page.context.close()
