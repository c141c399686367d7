"""Inference in the portal (HTTP, no browser): a project's endpoints and keys, a key made through
the form shown once and good at the gateway (`/v1`) until it is revoked through the form, and
who sees and does what.

tests.api.conftest's `tenants`: proj-a (owen owner, alice member, vera viewer), proj-b (bob),
carol in no project. owen serves `dutch` from a succeeded job of proj-a through the API; no
engine runs (its replica waits for the scheduler), which these pages need not know.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import Tenants, bearer
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession
from tests.web.test_jobs_pages import field_error, run_job, submit

Pages = Callable[[str], PortalSession]
MADE_KEY = re.compile(r'<code id="made-key">(aik_[^<]+)</code>')


@dataclass(frozen=True)
class Served:
    trained: int  # the succeeded job whose checkpoints `dutch` serves
    replica: int  # its replica's job (waiting)


@pytest.fixture
def served(tenants: Tenants, live_server: LiveServer) -> Served:
    trained = submit(tenants, "alice", "proj-a", "train")
    run_job(live_server, trained)
    with live_server.db.session() as session:
        job = session.get_one(Job, trained)
        switch_job_state(session, job, JobState.SUCCEEDED, now=time.time(), actor="test")
    made = tenants.as_("owen").create_endpoint("dutch", project="proj-a", source_job=trained)
    (replica,) = made["running"]
    return Served(trained, replica["job_id"])


def models_at_the_gateway(live_server: LiveServer, key: str) -> httpx.Response:
    return httpx.get(f"{live_server.url}/v1/models", headers=bearer(key), timeout=30)


def test_a_member_sees_the_projects_endpoints_and_keys(
    pages: Pages, tenants: Tenants, served: Served
) -> None:
    tenants.as_("owen").create_inference_key(
        "app", project="proj-a", models=["dutch"], token_budget=100_000
    )
    alice = pages(tenants.tokens["alice"])
    page = alice.get("/inference")
    assert page.status_code == 200
    assert '<a href="/inference">Inference</a>' in page.text or 'href="/inference"' in page.text
    row = re.search(r'<a href="/inference/proj-a/dutch">dutch</a>.*?</tr>', page.text, re.S)
    assert row, page.text
    for shown in (
        f'<a href="/jobs/{served.trained}">job {served.trained}</a>',
        f'<a href="/jobs/{served.replica}">{served.replica}</a>',
        '<span class="state state-PENDING">PENDING</span>',
    ):
        assert shown in row.group(0), shown
    (key,) = tenants.as_("owen").inference_keys(project="proj-a")
    keys = re.search(r"<th scope=\"row\">app</th>.*?</tr>", page.text, re.S)
    assert keys, page.text
    for shown in (f"<code>{key['prefix']}…</code>", "<td>dutch</td>", "100 000", "by owen"):
        assert shown in keys.group(0), shown
    assert "aifactory endpoints create NAME --project proj-a --from JOB" in page.text
    assert "Make a key" not in page.text, "only owners make keys"

    endpoint = alice.get("/inference/proj-a/dutch")
    assert endpoint.status_code == 200
    assert '<script src="/static/inference.js" defer></script>' in endpoint.text
    chat = re.search(r'<form id="chat".*?</form>', endpoint.text, re.S)
    assert chat, endpoint.text
    assert 'data-model="dutch"' in chat.group(0)
    assert 'type="password"' in chat.group(0)
    assert " name=" not in chat.group(0), "nothing of the chat box is sent to the portal"
    script = alice.http.get("/static/inference.js")
    assert script.status_code == 200
    assert '"/v1/chat/completions"' in script.text


def test_facility_roles_see_every_projects_endpoints_and_others_none(
    pages: Pages, tenants: Tenants, served: Served
) -> None:
    finance = tenants.admin.create_user("fin", facility_role="finance")["token"]
    page = pages(finance).get("/inference")
    assert page.status_code == 200
    assert '<a href="/inference/proj-a/dutch">dutch</a>' in page.text
    assert "Make a key" not in page.text
    assert "Remove" not in page.text

    carol = pages(tenants.tokens["carol"])
    nothing = carol.get("/inference")
    assert nothing.status_code == 200
    assert 'href="/inference"' not in nothing.text, "no menu entry without ENDPOINT_READ"
    assert "No project where you may see inference endpoints." in nothing.text


def test_another_projects_endpoints_and_keys_do_not_exist_for_an_outsider(
    pages: Pages, tenants: Tenants, served: Served
) -> None:
    key = tenants.as_("owen").create_inference_key("app", project="proj-a")
    for outsider in ("bob", "carol"):
        session = pages(tenants.tokens[outsider])
        listing = session.get("/inference")
        assert "dutch" not in listing.text
        assert "proj-a" not in listing.text
        assert session.get("/inference", project="proj-a").status_code == 404, outsider
        assert session.get("/inference/proj-a/dutch").status_code == 404, outsider
        for path in (
            "/inference/proj-a/keys",
            f"/inference/proj-a/keys/{key['id']}/revoke",
            "/inference/proj-a/endpoints/dutch/delete",
        ):
            assert session.post(path, {"name": "sneaky"}).status_code == 404, (outsider, path)
    assert [k["name"] for k in tenants.as_("owen").inference_keys(project="proj-a")] == ["app"]
    assert tenants.as_("owen").endpoint("dutch", project="proj-a")["running"]


def test_a_key_made_in_the_form_is_shown_once_and_good_at_the_gateway_until_revoked(
    pages: Pages, tenants: Tenants, live_server: LiveServer, served: Served
) -> None:
    owen = pages(tenants.tokens["owen"])
    assert "Make a key for proj-a" in owen.get("/inference", project="proj-a").text
    made = owen.post(
        "/inference/proj-a/keys",
        {
            "name": "web",
            "models": "dutch",
            "token_budget": "500",
            "budget_eur": "12,50",
            "rpm": "60",
            "tpm": "",
            "ttl_days": "30",
        },
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "location" not in made.headers
    found = MADE_KEY.search(made.text)
    assert found, made.text
    key = found.group(1)
    assert made.text.count(key) == 1
    assert "shown this once and never again" in made.text

    listing = owen.get("/inference", project="proj-a")
    assert key not in listing.text
    assert f"<code>{key[:12]}…</code>" in listing.text
    (view,) = tenants.as_("owen").inference_keys(project="proj-a")
    assert (view["name"], view["models"], view["token_budget"]) == ("web", ["dutch"], 500)
    assert (view["budget_eur"], view["rpm"], view["tpm"]) == ("12.50", 60, None)
    assert "60 requests/min" in listing.text
    assert view["expires_at"] is not None

    answer = models_at_the_gateway(live_server, key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["object"] == "list"
    assert [m["id"] for m in answer.json()["data"]] == ["dutch"]

    revoke = f"/inference/proj-a/keys/{view['id']}/revoke"
    assert pages(tenants.tokens["alice"]).post(revoke).status_code == 403, "members do not"
    revoked = owen.post(revoke)
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/inference?project=proj-a"
    assert models_at_the_gateway(live_server, key).status_code == 401
    assert (
        '<span class="state state-revoked">revoked</span>'
        in owen.get("/inference", project="proj-a").text
    )
    again = owen.post(revoke)
    assert again.status_code == 409
    assert f"inference key {view['id']} is revoked already" in again.text


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("ttl_days", "-1", "greater than 0"),
        ("ttl_days", "nan", "finite number"),
        ("ttl_days", "a week", "valid number"),
        ("token_budget", "0", "greater than or equal to 1"),
        ("token_budget", "1.5", "valid integer"),
        ("name", "two words", "ASCII letters"),
        ("models", "dutch, no/slash", "ASCII letters"),
        ("budget_eur", "ten", "valid decimal"),
        ("budget_eur", "0", "greater than 0"),
        ("budget_eur", "0.001", "whole cents"),
        ("rpm", "0", "greater than or equal to 1"),
        ("tpm", "many", "valid integer"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_makes_nothing(
    pages: Pages, tenants: Tenants, served: Served, field: str, typed: str, said: str
) -> None:
    owen = pages(tenants.tokens["owen"])
    owen.get("/inference", project="proj-a")
    blank = ("models", "token_budget", "budget_eur", "rpm", "tpm", "ttl_days")
    form = {"name": "web", **dict.fromkeys(blank, ""), field: typed}
    refused = owen.post("/inference/proj-a/keys", form)
    assert refused.status_code == 422, refused.text
    assert said in field_error(refused, f"{field}-1")
    assert re.search(
        rf'id="{field}-1"[^>]*value="{re.escape(typed)}"[^>]*aria-invalid="true"', refused.text
    )
    assert not MADE_KEY.search(refused.text)
    assert tenants.as_("owen").inference_keys(project="proj-a") == []


def test_a_viewer_sees_no_forms_and_may_not_post_them(
    pages: Pages, tenants: Tenants, served: Served
) -> None:
    key = tenants.as_("owen").create_inference_key("app", project="proj-a")
    vera = pages(tenants.tokens["vera"])
    page = vera.get("/inference")
    assert page.status_code == 200
    assert '<a href="/inference/proj-a/dutch">dutch</a>' in page.text
    assert '<th scope="row">app</th>' in page.text
    for hidden in ("Make a key", "/revoke", "/delete", "aifactory endpoints create"):
        assert hidden not in page.text, hidden
    assert "/delete" not in vera.get("/inference/proj-a/dutch").text
    for path in (
        "/inference/proj-a/keys",
        f"/inference/proj-a/keys/{key['id']}/revoke",
        "/inference/proj-a/endpoints/dutch/delete",
    ):
        refused = vera.post(path, {"name": "mine"})
        assert refused.status_code == 403, (path, refused.text)
        assert "only " in refused.text
    assert (
        pages(tenants.tokens["alice"]).post("/inference/proj-a/keys", {"name": "x"}).status_code
        == 403
    )
    (kept,) = tenants.as_("owen").inference_keys(project="proj-a")
    assert kept["revoked_at"] is None
    assert tenants.as_("owen").endpoints(project="proj-a")


def test_a_member_removes_an_endpoint_and_its_replica_is_cancelled(
    pages: Pages, tenants: Tenants, served: Served
) -> None:
    alice = pages(tenants.tokens["alice"])
    page = alice.get("/inference/proj-a/dutch")
    assert 'data-confirm="Remove endpoint dutch?' in page.text
    removed = alice.post("/inference/proj-a/endpoints/dutch/delete")
    assert removed.status_code == 303
    assert removed.headers["location"] == "/inference?project=proj-a"
    assert tenants.as_("owen").endpoints(project="proj-a") == []
    assert tenants.as_("owen").job(served.replica)["state"] == "CANCELLED"
    assert "proj-a serves no model." in alice.get("/inference", project="proj-a").text
    assert alice.get("/inference/proj-a/dutch").status_code == 404
    assert alice.post("/inference/proj-a/endpoints/dutch/delete").status_code == 404
