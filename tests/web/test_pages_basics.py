"""The portal's plumbing over HTTP: sign-in required, CSRF enforced, security headers."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession


def test_pages_need_a_session_and_send_the_browser_to_sign_in(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/account?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account%3Fx%3D1"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    refused = alice.http.post("/logout", data={})
    assert refused.status_code == 403
    assert "security token" in refused.text
    assert alice.get("/account").status_code == 200  # still signed in
    assert alice.post("/logout").status_code == 303
    assert alice.get("/account").status_code == 303


def test_pages_carry_a_strict_content_security_policy(
    pages: Callable[[str], PortalSession], live_server: LiveServer
) -> None:
    admin = pages(live_server.admin_token)
    response = admin.get("/")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "http" not in policy  # no outside origin
    assert 'src="http' not in response.text
    assert 'href="http' not in response.text


def test_forms_refuse_what_the_api_refuses_with_the_field_named(
    pages: Callable[[str], PortalSession], live_server: LiveServer, tenants: Tenants
) -> None:
    admin = pages(live_server.admin_token)
    admin.get("/projects")
    slash = admin.post("/projects", {"name": "a/b", "organisation": "acme", "owner": ""})
    assert slash.status_code == 422
    assert "ASCII letters" in slash.text
    nul = admin.post("/projects", {"name": "ok", "organisation": "ac\x00me", "owner": ""})
    assert nul.status_code == 422
    assert "NUL" in nul.text
    assert {p["name"] for p in tenants.admin.projects()} == {"default", "proj-a", "proj-b"}
