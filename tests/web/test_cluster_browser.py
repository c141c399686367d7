"""The cluster picture and a what-if run, in a real browser on a real facility (4 virtual GPUs,
the local executor running the jobs for real)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in


def running(client: httpx.Client, job_ids: list[int], timeout_s: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [client.get(f"/jobs/{j}").json() for j in job_ids]
        if all(job["state"] == "RUNNING" for job in jobs):
            return jobs
        assert time.monotonic() < deadline, [job["state"] for job in jobs]
        time.sleep(0.3)


def test_the_picture_shows_the_running_jobs_gpus_and_a_what_if_run_compares_two_policies(
    page: Page, portal: FacilityProcess
) -> None:
    with api(portal) as client:
        asks = [{"command": ["sleep", "30"], "gpus": g, "time_limit_s": 600} for g in (1, 2)]
        job_ids = [client.post("/jobs", json=ask).json()["id"] for ask in asks]
        try:
            jobs = running(client, job_ids)
            _cluster_picture(page, portal, project=jobs[0]["project"], job_ids=job_ids)
            _what_if(page, portal)
        finally:
            for job_id in job_ids:
                client.post(f"/jobs/{job_id}/cancel")


def _cluster_picture(
    page: Page, portal: FacilityProcess, *, project: str, job_ids: list[int]
) -> None:
    sign_in(page, portal)
    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("heading", name="Cluster", exact=True)).to_be_visible()
    picture = page.locator("svg.cluster")
    expect(picture.locator("rect.gpu-busy")).to_have_count(3)
    expect(picture.locator("rect.gpu-free")).to_have_count(1)
    expect(picture.locator(f'rect[data-project="{project}"]')).to_have_count(3)
    expect(page.locator(".cluster-legend")).to_contain_text(f"{project} (3 GPUs)")
    expect(page.locator("#cluster-figures")).to_contain_text("3 of 4 GPUs busy")
    box = picture.bounding_box()
    assert box is not None
    assert box["width"] > 200
    links = picture.locator("a[href^='/jobs/']")
    expect(links).to_have_count(3)
    assert {links.nth(i).get_attribute("href") for i in range(3)} == {f"/jobs/{j}" for j in job_ids}
    screenshot(page, "cluster")


def _what_if(page: Page, portal: FacilityProcess) -> None:
    page.get_by_role("link", name="What-if").click()
    expect(page.get_by_role("heading", name="Scheduler what-if")).to_be_visible()
    page.get_by_label("Jobs from").select_option("itp-merged")
    page.get_by_label("How many jobs").fill("200")
    page.get_by_label("GPUs to replay on").fill("64")
    page.get_by_label("Policy").first.select_option("fairshare")
    page.get_by_label("Policy").nth(1).select_option("slurm")
    screenshot(page, "whatif-form")
    page.get_by_role("button", name="Start the replay").click()
    expect(page).to_have_url(f"{portal.url}/whatif/1")
    chart = page.get_by_role("img", name=re.compile(r"^Mean wait"))
    expect(chart).to_be_visible(timeout=60_000)
    expect(page.get_by_role("row", name="GPU utilisation")).to_be_visible()
    expect(page.get_by_role("img", name="Fairness (Jain's index, 1 is fair)")).to_be_visible()
    screenshot(page, "whatif")
