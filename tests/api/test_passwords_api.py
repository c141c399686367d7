"""Portal passwords through the API: admins reset one (shown once), everyone changes their own."""

from __future__ import annotations

import httpx

from aifactory.client.client import Client
from tests.api.helpers import Tenants, assert_error, bearer
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession


def test_an_admin_resets_a_password_that_then_signs_in_to_the_portal(
    admin: Client, tenants: Tenants, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    issued = admin.reset_password("alice")
    assert issued["user"] == "alice"
    assert len(issued["password"]) >= 12
    alice = bearer(tenants.tokens["alice"])
    assert_error(api.post("/users/bob/password", headers=alice), 403, None)
    assert_error(api.post("/users/nobody/password", headers=admin_headers), 404, "user")
    portal = PortalSession(str(api.base_url).removesuffix("/").removesuffix("/api/v1"))
    try:
        portal.http.get("/login")
        form = {
            "username": "alice",
            "password": issued["password"],
            "login_csrf": portal.http.cookies.get("aifactory_login", path="/login") or "",
        }
        assert portal.http.post("/login/password", data=form).status_code == 303
    finally:
        portal.close()


def test_changing_ones_own_password_names_the_field_at_fault(
    tenants: Tenants, api: httpx.Client
) -> None:
    carol = bearer(tenants.tokens["carol"])
    body = {"new_password": "carols first passphrase"}
    assert_error(api.put("/me/password", json=body, headers=carol), 422, "new_password")
    body = {"new_password": "a first passphrase"}
    assert api.put("/me/password", json=body, headers=carol).status_code == 204
    again = {"new_password": "a second passphrase", "current_password": "wrong"}
    assert_error(api.put("/me/password", json=again, headers=carol), 422, "current_password")
    again["current_password"] = "a first passphrase"
    assert api.put("/me/password", json=again, headers=carol).status_code == 204
    assert_error(api.put("/me/password", json={}, headers=carol), 422, "new_password")


WEAK = [
    ("aaaaaaaaaaaa", "one character repeated"),
    ("abababababab", "at least 6 different characters"),
    ("password1234", "commonly used"),
    ("Qwertyuiop!!", "commonly used"),
    ("Summer2026!!!", "commonly used"),
]


def test_trivially_weak_passwords_are_refused_with_the_reason(
    tenants: Tenants, api: httpx.Client
) -> None:
    carol = bearer(tenants.tokens["carol"])
    for weak, reason in WEAK:
        body = {"new_password": weak}
        response = api.put("/me/password", json=body, headers=carol)
        assert_error(response, 422, "new_password", reason=reason)
    assert api.put("/me/password", json={"new_password": "a first passphrase"}, headers=carol)


def test_the_portals_password_form_refuses_them_alike(
    tenants: Tenants, live_server: LiveServer
) -> None:
    portal = PortalSession(live_server.url).sign_in(tenants.tokens["carol"])
    try:
        for weak, reason in WEAK:
            form = {"new_password": weak, "repeat_password": weak}
            refused = portal.post("/account/password", form)
            assert refused.status_code == 422, refused.text
            assert reason in refused.text, reason
        strong = "a first passphrase"
        form = {"new_password": strong, "repeat_password": strong}
        assert portal.post("/account/password", form).status_code == 200
    finally:
        portal.close()
