"""Hold and Release on a job's page (services.queue_control, as the API): for whoever may cancel
the job, with the form's CSRF token; a hold for budget or data offers no Release."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

Pages = Callable[[str], PortalSession]
HOLD = 'action="/jobs/{}/hold"'
RELEASE = 'action="/jobs/{}/release"'


def state_of(page: httpx.Response) -> str:
    marker = 'id="job-state">'
    return page.text.split(marker, 1)[1].split("<", 1)[0]


def test_a_member_holds_and_releases_a_job_from_its_page(pages: Pages, tenants: Tenants) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/jobs/{job_id}")
    assert HOLD.format(job_id) in page.text
    assert RELEASE.format(job_id) not in page.text

    held = alice.post(f"/jobs/{job_id}/hold")
    assert (held.status_code, held.headers["location"]) == (303, f"/jobs/{job_id}")
    page = alice.get(f"/jobs/{job_id}")
    assert state_of(page) == "HELD"
    assert "held by alice" in page.text
    assert HOLD.format(job_id) not in page.text
    assert RELEASE.format(job_id) in page.text

    assert alice.post(f"/jobs/{job_id}/release").status_code == 303
    assert state_of(alice.get(f"/jobs/{job_id}")) == "PENDING"
    assert "released by alice" in alice.get(f"/jobs/{job_id}").text


def test_a_viewer_gets_no_buttons_and_another_project_no_job(
    pages: Pages, tenants: Tenants
) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    vera = pages(tenants.tokens["vera"])
    seen = vera.get(f"/jobs/{job_id}")
    assert seen.status_code == 200
    assert HOLD.format(job_id) not in seen.text
    assert vera.post(f"/jobs/{job_id}/hold").status_code == 403
    bob = pages(tenants.tokens["bob"])
    bob.get("/jobs")
    assert bob.post(f"/jobs/{job_id}/hold").status_code == 404
    assert bob.post(f"/jobs/{job_id}/release").status_code == 404
    alice = pages(tenants.tokens["alice"])
    alice.get(f"/jobs/{job_id}")
    forged = alice.http.post(f"/jobs/{job_id}/hold", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert tenants.admin.job(job_id)["state"] == "PENDING"


def test_a_hold_for_budget_offers_no_release_and_says_why(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        reason = "no budget: the project has no allocation valid now"
        switch_job_state(session, job, JobState.HELD, now=time.time(), actor="loop", reason=reason)
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/jobs/{job_id}")
    assert RELEASE.format(job_id) not in page.text
    refused = alice.post(f"/jobs/{job_id}/release")
    assert refused.status_code == 409
    assert "aifactory allocations adjust" in refused.text
