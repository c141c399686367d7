"""Jobs through a real browser on a real facility: a job submitted with the form runs on the
local executor and its page follows it live (htmx) to the end, log included; the form shows
a refusal next to its field; and the cancel button asks first, then stops a running job."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in

JOB_PAGE = re.compile(r"/jobs/(\d+)$")


def submit_with_form(page: Page, portal: FacilityProcess, name: str, command: str) -> int:
    page.goto(f"{portal.url}/jobs/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Command", exact=True).fill(command)
    page.get_by_label("GPUs per node").fill("1")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(JOB_PAGE)
    found = JOB_PAGE.search(page.url)
    assert found
    return int(found.group(1))


def test_a_job_submitted_with_the_form_runs_and_its_page_follows_it_to_the_end(
    page: Page, portal: FacilityProcess
) -> None:
    sign_in(page, portal)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name="Submit a job").click()
    job_id = submit_with_form(
        page, portal, "hello-portal", "python3 -c \"print('hello from the portal')\""
    )
    expect(page.get_by_role("heading", name=f"Job {job_id}: hello-portal")).to_be_visible()
    expect(page.locator("#job-state")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("pre.log")).to_contain_text("hello from the portal", timeout=30_000)
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline).to_contain_text("RUNNING")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    with api(portal) as client:
        job = client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "SUCCEEDED"
    assert job["command"] == ["python3", "-c", "print('hello from the portal')"]
    assert job["gpus"] == 1
    screenshot(page, "job-page")
    page.goto(f"{portal.url}/jobs")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=str(job_id)))
    expect(row).to_contain_text("hello-portal")
    expect(row.locator(".state-SUCCEEDED")).to_have_text("SUCCEEDED")
    screenshot(page, "jobs-list")


def test_the_form_shows_a_refusal_next_to_its_field_and_keeps_what_was_typed(
    page: Page, portal: FacilityProcess
) -> None:
    sign_in(page, portal)
    page.goto(f"{portal.url}/jobs/new")
    page.get_by_label("Name", exact=True).fill("no-cpus")
    page.get_by_label("Command", exact=True).fill("true")
    cpus = page.get_by_label("CPUs per node")
    cpus.fill("0")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(f"{portal.url}/jobs")
    expect(page.get_by_role("alert")).to_contain_text("correct the fields")
    expect(cpus).to_have_attribute("aria-invalid", "true")
    expect(cpus).to_have_accessible_description("Input should be greater than or equal to 1")
    expect(cpus).to_have_value("0")
    expect(page.get_by_label("Name", exact=True)).to_have_value("no-cpus")
    screenshot(page, "job-form-error")
    with api(portal) as client:
        assert not [j for j in client.get("/jobs").json() if j["name"] == "no-cpus"]


def test_the_cancel_button_asks_first_then_stops_a_running_job(
    page: Page, portal: FacilityProcess
) -> None:
    sign_in(page, portal)
    job_id = submit_with_form(page, portal, "sleeper", "sleep 300")
    expect(page.locator("#job-state")).to_have_text("RUNNING", timeout=30_000)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel job").click()
    with api(portal) as client:
        assert not client.get(f"/jobs/{job_id}").json()["cancel_requested"], "dismissed"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-state")).to_have_text("CANCELLED", timeout=30_000)
    with api(portal) as client:
        assert client.get(f"/jobs/{job_id}").json()["state"] == "CANCELLED"
