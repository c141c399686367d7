"""Money in a real browser on a real facility: a job runs and is settled, its allocation's
burn-down is drawn and adjusted through the form, the usage page counts the job, and an invoice
issued through the portal's form is downloaded as a PDF from its link. (An invoice is issued
only for a month that has ended, so the form is tried on this month, refused, then used for the
last one.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in


def run_a_job(portal: FacilityProcess) -> int:
    """A one-GPU job in the default project, run to its end (and so settled)."""
    with api(portal) as client:
        created = client.post("/jobs", json={"name": "tiny", "command": ["true"], "gpus": 1})
        assert created.status_code == 201, created.text
        job_id: int = created.json()["id"]
        deadline = time.monotonic() + 60
        while (state := client.get(f"/jobs/{job_id}").json()["state"]) != "SUCCEEDED":
            assert state not in ("FAILED", "CANCELLED", "TIMEOUT"), state
            assert time.monotonic() < deadline, f"job {job_id} still {state}"
            time.sleep(0.1)
    return job_id


def test_a_settled_job_shows_in_the_burn_down_and_usage_and_its_invoice_downloads(
    page: Page, portal: FacilityProcess, tmp_path: Path
) -> None:
    sign_in(page, portal)
    run_a_job(portal)

    page.goto(f"{portal.url}/allocations")
    page.get_by_role("link", name="default-starter", exact=True).click()
    expect(page.get_by_role("heading", name="Allocation default-starter")).to_be_visible()
    chart = page.get_by_role("img", name="default-starter: GPU-hours left over time")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 300
    expect(page.locator("td", has_text="settle").first).to_be_visible()
    page.get_by_label("GPU-hours to add (negative: to take)").fill("-30")
    page.get_by_label("Reason (kept in the ledger)").fill("correction after an audit")
    page.get_by_role("button", name="Adjust").click()
    expect(page.get_by_role("status")).to_have_text("The balance is adjusted.")
    expect(page.locator("#fig-left")).to_have_text("70.0")
    expect(page.get_by_role("cell", name="correction after an audit")).to_be_visible()
    screenshot(page, "allocations")

    page.get_by_role("link", name="Usage & invoices").click()
    expect(page.locator("#total-records")).to_have_text("1")
    expect(page.get_by_role("rowheader", name="default")).to_be_visible()
    expect(page.get_by_role("img", name="GPU-hours per project", exact=False)).to_be_visible()
    screenshot(page, "usage")

    page.get_by_role("link", name="Invoices", exact=True).click()
    month = page.get_by_label("Month", exact=True)
    this_month = datetime.now(UTC).strftime("%Y-%m")
    month.fill(this_month)
    page.get_by_role("button", name="Issue invoice").click()
    expect(page.locator("#month-error")).to_contain_text(f"month {this_month} is not closed yet")

    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    page.get_by_label("Project").select_option("default")
    page.get_by_label("Month", exact=True).fill(last_month)
    page.get_by_role("button", name="Issue invoice").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("is issued")
    number = status.inner_text().split()[1]

    with page.expect_download() as download:
        page.get_by_role("link", name=f"PDF of {number}").click()
    assert download.value.suggested_filename == f"{number}.pdf"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    screenshot(page, "invoices")
