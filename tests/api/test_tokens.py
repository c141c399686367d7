"""Authentication: bearer tokens that are hashed, expiring and revocable."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import httpx
import pytest

from aifactory.client.client import ApiError, Client
from aifactory.store.models import ApiToken
from tests.api.helpers import Tenants, assert_error, bearer
from tests.conftest import LiveServer

TOKEN_FIELDS = {"id", "name", "prefix", "created_at", "expires_at", "revoked_at"}


def test_missing_or_garbage_tokens_are_401_with_www_authenticate(api: httpx.Client) -> None:
    for headers in [
        {},
        {"Authorization": "Bearer afy_not-a-real-token"},
        {"Authorization": "Bearer"},
        {"Authorization": "afy_no-scheme"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ]:
        for method, path in [("GET", "/jobs"), ("POST", "/jobs/1/cancel"), ("GET", "/me")]:
            response = api.request(method, path, headers=headers)
            body = assert_error(response, 401)
            assert body["error"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"
    assert "invalid" in api.get("/me", headers=bearer("afy_garbage")).json()["message"]
    # Health needs no token.
    assert api.get("/health").status_code == 200


def test_revoked_token_is_401_revoked(admin: Client, api: httpx.Client) -> None:
    issued = admin.create_token("laptop")
    assert api.get("/me", headers=bearer(issued["token"])).status_code == 200

    revoked = admin.revoke_token(issued["id"])

    assert revoked["revoked_at"] is not None
    body = assert_error(api.get("/me", headers=bearer(issued["token"])), 401, reason="revoked")
    assert body["error"] == "unauthenticated"
    # Revoking again changes nothing; the admin's own token still works.
    assert admin.revoke_token(issued["id"])["revoked_at"] == revoked["revoked_at"]
    assert admin.me()["name"] == "admin"

    # A token may revoke itself.
    own = admin.create_token("short-lived")
    response = api.delete(f"/tokens/{own['id']}", headers=bearer(own["token"]))
    assert response.status_code == 200
    assert_error(api.get("/jobs", headers=bearer(own["token"])), 401, reason="revoked")


def test_expired_token_is_401_expired(
    live_server: LiveServer, admin: Client, api: httpx.Client
) -> None:
    before = time.time()
    issued = admin.create_token("ci", ttl_days=1)
    expires = datetime.fromisoformat(issued["expires_at"]).timestamp()
    assert before + 86400 - 5 <= expires <= time.time() + 86400 + 5
    assert api.get("/me", headers=bearer(issued["token"])).status_code == 200

    with live_server.db.session() as session:
        row = session.get(ApiToken, issued["id"])
        assert row is not None
        row.expires_at = time.time() - 1
    # Written behind the API's back: the server sees it once its principal cache (2 s) lapses;
    # clearing the cache stands in for that wait. A real expiry bounds the cache entry itself.
    live_server.state.principals.clear()

    body = assert_error(api.get("/me", headers=bearer(issued["token"])), 401, reason="expired")
    assert body["error"] == "unauthenticated"
    assert admin.me()["name"] == "admin"


def test_ttl_days_must_be_positive_and_bounded(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    # Under a minute a token would be expired when issued (1e-300 days was once accepted).
    for ttl in [0, -1, 3651, "7", 1e-300, 1 / 1440 * 0.99]:
        response = api.post("/tokens", json={"ttl_days": ttl}, headers=admin_headers)
        assert_error(response, 422, "ttl_days")
    for not_finite in ["NaN", "Infinity", "-Infinity"]:  # Python's JSON reader takes them
        raw = f'{{"ttl_days": {not_finite}}}'
        headers = {**admin_headers, "Content-Type": "application/json"}
        assert_error(api.post("/tokens", content=raw, headers=headers), 422, "ttl_days")
    minute = api.post("/tokens", json={"ttl_days": 1 / 1440}, headers=admin_headers)
    assert minute.status_code == 201, minute.text
    issued = minute.json()
    lasts = datetime.fromisoformat(issued["expires_at"]) - datetime.fromisoformat(
        issued["created_at"]
    )
    assert abs(lasts.total_seconds() - 60) < 0.01
    assert_error(api.post("/tokens", json={"name": ""}, headers=admin_headers), 422, "name")
    assert_error(api.post("/tokens", json={"nmae": "x"}, headers=admin_headers), 422, "nmae")


def test_token_list_never_shows_the_token_or_its_hash(
    admin: Client, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    issued = admin.create_token("laptop", ttl_days=30)
    plain = issued["token"]
    assert plain.startswith("afy_")
    assert plain.startswith(issued["prefix"])
    assert len(issued["prefix"]) < len(plain) // 2

    response = api.get("/tokens", headers=admin_headers)

    assert response.status_code == 200
    listed = response.json()
    assert [t["name"] for t in listed] == ["first admin token", "laptop"]
    for token in listed:
        assert set(token) == TOKEN_FIELDS
    assert plain not in response.text
    assert hashlib.sha256(plain.encode()).hexdigest() not in response.text
    assert (
        hashlib.sha256(plain.encode()).hexdigest()
        not in api.get("/tokens?owner=admin", headers=admin_headers).text
    )


def test_users_manage_only_their_own_tokens(tenants: Tenants, api: httpx.Client) -> None:
    alice, bob = tenants.as_("alice"), tenants.as_("bob")
    bobs = bob.create_token("bob-laptop")

    with pytest.raises(ApiError) as raised:
        alice.revoke_token(bobs["id"])
    assert raised.value.status == 404
    assert [e["field"] for e in raised.value.errors] == ["token_id"]
    assert api.get("/me", headers=bearer(bobs["token"])).status_code == 200  # still valid

    with pytest.raises(ApiError) as raised:  # refused before bob is looked up
        alice.tokens(owner="bob")
    assert raised.value.status == 403
    with pytest.raises(ApiError) as raised:
        alice.create_token("for-bob", user="bob")
    assert raised.value.status == 403
    assert [t["name"] for t in bob.tokens()] == ["first token", "bob-laptop"]
    assert [t["name"] for t in alice.tokens()] == ["first token"]
    assert_error(api.delete("/tokens/9999", headers=tenants.headers("alice")), 404, "token_id")


def test_admin_issues_lists_and_revokes_tokens_for_another_user(
    tenants: Tenants, api: httpx.Client
) -> None:
    admin = tenants.admin

    issued = admin.create_token("for-alice", ttl_days=7, user="alice")

    me = api.get("/me", headers=bearer(issued["token"])).json()
    assert me["name"] == "alice"
    assert [t["name"] for t in admin.tokens(owner="alice")] == ["first token", "for-alice"]
    assert [t["name"] for t in tenants.as_("alice").tokens()] == ["first token", "for-alice"]
    admin.revoke_token(issued["id"])
    assert_error(api.get("/me", headers=bearer(issued["token"])), 401, reason="revoked")
    with pytest.raises(ApiError) as raised:
        admin.create_token("x", user="ghost")
    assert raised.value.status == 404
    assert [e["field"] for e in raised.value.errors] == ["user"]

    created = admin.create_user("silent", token=False)
    assert created["token"] is None
    assert admin.tokens(owner="silent") == []
    later = admin.create_token("later", user="silent")
    assert api.get("/me", headers=bearer(later["token"])).json()["name"] == "silent"
