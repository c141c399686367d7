"""Portal passwords through the API: admins reset one (shown once), everyone changes their own."""

from __future__ import annotations

import httpx

from aifactory.client.client import Client
from tests.api.helpers import Tenants, assert_error, bearer
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
