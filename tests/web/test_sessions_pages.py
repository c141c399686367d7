"""Interactive sessions in the portal (HTTP, no browser): the start form (the API's checks, in
the API's words, next to their fields), the list and a session's page, stopping (CSRF), and the
link that opens a running session on its own origin, for whoever may use it and nobody else.

tests.api.conftest's `tenants`: proj-a (owen owner, alice member, vera viewer), proj-b (bob),
carol in no project. No control loop runs here: a session stays PENDING unless a test moves its
job on, as the loop would (tests.web.test_jobs_pages.run_job).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import InteractiveSession, Job
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession
from tests.web.test_jobs_pages import field_error, run_job

Pages = Callable[[str], PortalSession]
GOOD_FORM = {
    "project": "proj-a",
    "kind": "jupyter",
    "gpus": "1",
    "cpus": "2",
    "memory_mb": "2048",
    "gpu_model": "",
    "time_limit": "2h",
    "idle_timeout": "10",
    "datasets": "",
    "environment": "",
    "idempotency_key": "double-click",
}
CULLED = (
    "idle for 31 min (no kernel activity and no connection; its idle timeout is 30 min): "
    "stopped to free its resources"
)


def start(tenants: Tenants, who: str = "alice", project: str = "proj-a") -> int:
    started = tenants.as_(who).start_session(project=project, idle_timeout_s=600)
    return int(started["id"])


def state_of(tenants: Tenants, session_id: int) -> str:
    return str(tenants.as_("owen").session(session_id)["state"])


def end(live_server: LiveServer, session_id: int, culled: str | None = None) -> None:
    """End a session's job as the loop would (the culler also says why)."""
    with live_server.db.session() as session:
        job = session.get_one(Job, session_id)
        switch_job_state(session, job, JobState.CANCELLED, now=time.time(), actor="idle culler")
        session.get_one(InteractiveSession, session_id).culled_reason = culled


def test_the_form_offers_the_projects_they_may_start_sessions_in(
    pages: Pages, tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    page = alice.get("/sessions")
    assert page.status_code == 200
    assert '<a href="/sessions" aria-current="page">Sessions</a>' in page.text
    form = re.search(r'<form method="post" action="/sessions".*?</form>', page.text, re.S)
    assert form, page.text
    assert re.findall(r'<option value="([^"]+)"', form.group(0)) == ["proj-a", "jupyter", "shell"]
    for field in ("gpus", "cpus", "memory_mb", "time_limit", "idle_timeout", "datasets"):
        assert f'name="{field}"' in form.group(0), field
    assert 'name="csrf_token"' in form.group(0)
    assert "No sessions yet." in page.text

    vera = pages(tenants.tokens["vera"])
    seen = vera.get("/sessions")
    assert seen.status_code == 200
    assert 'href="/sessions"' not in seen.text, "no menu entry without JOB_SUBMIT"
    assert 'action="/sessions"' not in seen.text, "a viewer starts nothing"
    assert vera.post("/sessions", GOOD_FORM).status_code == 403
    assert alice.http.post("/sessions", data=GOOD_FORM).status_code == 403, "no CSRF token"
    assert tenants.as_("alice").sessions() == []


def test_a_good_form_starts_a_session_and_opens_its_page(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/sessions")
    started = alice.post("/sessions", GOOD_FORM)
    assert started.status_code == 303, started.text
    found = re.fullmatch(r"/sessions/(\d+)", started.headers["location"])
    assert found, started.headers
    session_id = int(found.group(1))
    assert live_server.submissions, "the control loop is woken"
    again = alice.post("/sessions", GOOD_FORM)
    assert again.headers["location"] == f"/sessions/{session_id}", "a double click is one"

    (made,) = tenants.as_("alice").sessions()
    assert made["id"] == session_id
    assert (made["project"], made["kind"], made["owner"]) == ("proj-a", "jupyter", "alice")
    assert (made["gpus"], made["cpus"], made["memory_mb"]) == (1, 2, 2048)
    assert (made["time_limit_s"], made["idle_timeout_s"]) == (7200, 600.0)

    page = alice.get(f"/sessions/{session_id}")
    assert page.status_code == 200
    assert f"<h1>Session {session_id}</h1>" in page.text
    assert '<span class="state state-PENDING" id="session-state">PENDING</span>' in page.text
    assert f'hx-get="/sessions/{session_id}/status" hx-trigger="every 2s"' in page.text
    assert f'<a href="/jobs/{session_id}">job {session_id}</a>' in page.text
    assert "1 GPU, 2 CPUs, 2 048 MiB" in page.text
    assert "/open" not in page.text, "nothing to open before it runs"
    assert f'action="/sessions/{session_id}/stop"' in page.text
    assert alice.get(f"/sessions/{session_id}/status").status_code == 200

    listing = alice.get("/sessions")
    row = re.search(rf'<a href="/sessions/{session_id}">.*?</tr>', listing.text, re.S)
    assert row, listing.text
    for shown in ("<td>proj-a</td>", "<td>alice</td>", "state-PENDING", "€ 0.00", "/stop"):
        assert shown in row.group(0), shown


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("idle_timeout", "0", "must be from 1 to 10080 minutes"),
        ("idle_timeout", "soon", "must be a number"),
        ("project", "nope", "no project named 'nope' that you can see"),
        ("gpus", "-1", "greater than or equal to 0"),
        ("memory_mb", "lots", "valid integer"),
        ("time_limit", "30", "30 is ambiguous"),
        ("kind", "vnc", "'jupyter' or 'shell'"),
        ("datasets", "Bad Name", "should match pattern"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_keeps_what_was_typed(
    pages: Pages, tenants: Tenants, field: str, typed: str, said: str
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/sessions")
    refused = alice.post("/sessions", {**GOOD_FORM, field: typed})
    assert refused.status_code == 422, refused.text
    assert said in field_error(refused, field)
    assert "The session was not started" in refused.text
    if field not in ("project", "kind"):  # a select shows what it offers
        assert re.search(
            rf'id="{field}"[^>]*value="{re.escape(typed)}"[^>]*aria-invalid="true"', refused.text
        )
    for kept in ("memory_mb", "time_limit", "idle_timeout"):
        if kept != field:
            assert re.search(rf'id="{kept}"[^>]*value="{GOOD_FORM[kept]}"', refused.text), kept
    assert 'value="double-click"' in refused.text, "the same key: a resend is still one"
    assert tenants.as_("alice").sessions() == []


def test_a_dataset_that_does_not_exist_is_refused_at_its_field(
    pages: Pages, tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/sessions")
    refused = alice.post("/sessions", {**GOOD_FORM, "datasets": "no-such-data"})
    assert refused.status_code in (409, 422), refused.text
    assert "no-such-data" in field_error(refused, "datasets")
    assert tenants.as_("alice").sessions() == []


def test_a_session_stopped_for_being_idle_says_so(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    session_id = start(tenants)
    run_job(live_server, session_id)
    end(live_server, session_id, culled=CULLED)
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/sessions/{session_id}")
    assert page.status_code == 200
    assert f"Stopped because it was idle: {CULLED}" in page.text
    assert '<span class="state state-CANCELLED" id="session-state">' in page.text
    assert "hx-trigger" not in page.text, "an ended session is not polled"
    assert "/open" not in page.text
    assert "/stop" not in page.text
    assert alice.get(f"/sessions/{session_id}/status").status_code == 286
    listing = alice.get("/sessions")
    assert "state-CANCELLED" in listing.text
    assert f'href="/sessions/{session_id}/open"' not in listing.text


def test_stop_needs_the_forms_token_and_ends_the_session(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    session_id = start(tenants)
    alice = pages(tenants.tokens["alice"])
    refused = alice.http.post(f"/sessions/{session_id}/stop")
    assert refused.status_code == 403
    assert "security token" in refused.text
    assert state_of(tenants, session_id) == "PENDING"
    assert pages(tenants.tokens["bob"]).post(f"/sessions/{session_id}/stop").status_code == 404
    assert state_of(tenants, session_id) == "PENDING"

    alice.get("/sessions")
    stopped = alice.post(f"/sessions/{session_id}/stop", {"back": "/sessions"})
    assert stopped.status_code == 303
    assert stopped.headers["location"] == "/sessions"
    assert state_of(tenants, session_id) == "CANCELLED"
    assert live_server.submissions, "the loop is woken to stop it"
    again = alice.post(f"/sessions/{session_id}/stop")
    assert again.status_code == 409, "it ended already"

    running = start(tenants)
    run_job(live_server, running)
    alice.get(f"/sessions/{running}")
    asked = alice.post(f"/sessions/{running}/stop", {"back": "https://elsewhere.example/"})
    assert asked.headers["location"] == "/", "never a redirect to another site"
    page = alice.get(f"/sessions/{running}")
    assert "(stopping)" in page.text
    assert f"/sessions/{running}/open" not in page.text


def test_open_sends_its_owner_to_the_sessions_own_origin_with_a_one_use_ticket(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    session_id = start(tenants)
    alice = pages(tenants.tokens["alice"])
    waiting = alice.get(f"/sessions/{session_id}/open")
    assert waiting.status_code == 409
    assert f"session {session_id} is pending: it can be opened while it runs" in waiting.text
    assert f"<h1>Session {session_id}</h1>" in waiting.text

    run_job(live_server, session_id)
    page = alice.get(f"/sessions/{session_id}")
    assert (
        f'<a class="button" href="/sessions/{session_id}/open" target="_blank" rel="noopener">'
        in page.text
    )
    links = {opened(alice, session_id) for _ in range(2)}
    assert len(links) == 2, "a new ticket each time"
    owen = pages(tenants.tokens["owen"])
    assert f'href="/sessions/{session_id}/open"' in owen.get(f"/sessions/{session_id}").text
    opened(owen, session_id)  # the project's owner may open any of its sessions


def opened(portal: PortalSession, session_id: int) -> str:
    answer = portal.get(f"/sessions/{session_id}/open")
    assert answer.status_code == 303, answer.text
    assert answer.headers["cache-control"] == "no-store"
    url = answer.headers["location"]
    port = urlsplit(str(portal.http.base_url)).port
    assert url.startswith(
        f"http://s{session_id}.localhost:{port}/sessions/{session_id}/_aifactory/enter?ticket="
    ), url
    return url


def test_open_is_for_signed_in_users_who_may_use_the_session_and_not_found_for_others(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    tenants.admin.add_member("proj-a", "carol", "member")
    session_id = start(tenants)
    run_job(live_server, session_id)

    signed_out = httpx.get(f"{live_server.url}/sessions/{session_id}/open", timeout=30)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == f"/login?next=/sessions/{session_id}/open"

    bob = pages(tenants.tokens["bob"])  # another project
    for path in ("", "/status", "/open"):
        assert bob.get(f"/sessions/{session_id}{path}").status_code == 404, path
    assert "Not found" in bob.get(f"/sessions/{session_id}/open").text
    listing = bob.get("/sessions").text
    assert f'href="/sessions/{session_id}"' not in listing
    assert "No sessions yet." in listing

    carol = pages(tenants.tokens["carol"])  # a member of proj-a who did not start it
    seen = carol.get(f"/sessions/{session_id}")
    assert seen.status_code == 200
    assert "/open" not in seen.text
    assert f'action="/sessions/{session_id}/stop"' in seen.text, "members stop project jobs"
    refused = carol.get(f"/sessions/{session_id}/open")
    assert refused.status_code == 404
    assert "location" not in refused.headers

    vera = pages(tenants.tokens["vera"])  # a viewer sees it, opens and stops nothing
    shown = vera.get(f"/sessions/{session_id}")
    assert shown.status_code == 200
    assert "/open" not in shown.text
    assert "/stop" not in shown.text
    assert vera.get(f"/sessions/{session_id}/open").status_code in (403, 404)
    assert state_of(tenants, session_id) == "RUNNING"
