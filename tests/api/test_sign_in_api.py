"""Federated sign-in over the API: the providers anyone may list (the CLI asks before it has a
token), the exchange's refusals, and admins' approvals of first sign-ins (errors by field)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from aifactory.domain.federated_identity import Claims
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.oidc import OidcClient
from aifactory.services.federated.providers import ProviderConfig
from aifactory.store.models import User
from tests.api.helpers import Tenants, assert_error, bearer
from tests.cli.test_cli import cli
from tests.conftest import LiveServer

CONFIG = ProviderConfig(
    name="surf",
    label="SURFconext",
    issuer="https://connect.surfconext.example",
    client_id="portal",
    client_secret="s3cret",
    approval="admin",
    organisation_kinds={"uva.nl": "university", "tudelft.nl": "university"},  # type: ignore[dict-item]
)
ANNA = Claims(
    "https://connect.surfconext.example", "anna-1", name="Anna", home_organisation="uva.nl"
)


def test_providers_are_listed_without_a_token_and_secrets_never(
    live_server: LiveServer, api: httpx.Client
) -> None:
    live_server.state.sign_in = {"surf": OidcClient(CONFIG)}
    listed = api.get("/auth/providers")
    assert listed.status_code == 200
    assert listed.json() == [
        {
            "name": "surf",
            "label": "SURFconext",
            "issuer": "https://connect.surfconext.example",
            "cli_client_id": None,
            "scopes": ["openid", "profile", "email"],
        }
    ]
    assert "s3cret" not in listed.text
    assert_error(
        api.post("/auth/sso/token", json={"provider": "nope", "id_token": "x"}), 404, "provider"
    )
    portal_only = api.post("/auth/sso/token", json={"provider": "surf", "id_token": "x"})
    assert_error(portal_only, 401, "provider", reason="portal only")
    assert_error(api.post("/auth/sso/token", json={"provider": "surf"}), 422, "id_token")


def test_admins_approve_or_reject_first_sign_ins(
    live_server: LiveServer, api: httpx.Client, tenants: Tenants
) -> None:
    live_server.state.sign_in = {"surf": OidcClient(CONFIG)}
    with live_server.db.session() as session:
        assert federated.sign_in(session, CONFIG, ANNA, now=1.0) is None
        other = Claims(ANNA.issuer, "bram-1", name="Bram", home_organisation="tudelft.nl")
        assert federated.sign_in(session, CONFIG, other, now=2.0) is None
    admin = bearer(live_server.admin_token)
    waiting = api.get("/sign-in-requests", headers=admin).json()
    assert [(r["name"], r["home_organisation"], r["outcome"]) for r in waiting] == [
        ("Anna", "uva.nl", None),
        ("Bram", "tudelft.nl", None),
    ]
    assert_error(api.get("/sign-in-requests", headers=tenants.headers("alice")), 403)
    anna, bram = waiting[0]["id"], waiting[1]["id"]
    assert_error(
        api.post(f"/sign-in-requests/{anna}/approve", headers=tenants.headers("alice")), 403
    )
    approved = api.post(f"/sign-in-requests/{anna}/approve", headers=admin)
    assert approved.status_code == 200
    assert approved.json()["outcome"] == "approved"
    assert_error(api.post(f"/sign-in-requests/{anna}/reject", headers=admin), 409, "request")
    assert api.post(f"/sign-in-requests/{bram}/reject", headers=admin).json()["outcome"] == (
        "rejected"
    )
    assert_error(api.post("/sign-in-requests/999/approve", headers=admin), 404, "request")
    assert_error(api.post(f"/sign-in-requests/{bram}/maybe", headers=admin), 422, "decision")
    with live_server.db.read() as session:
        names = set(session.scalars(select(User.name)))
    assert "anna" in names
    assert "bram" not in names


def test_the_cli_lists_and_decides_sign_in_requests(live_server: LiveServer) -> None:
    live_server.state.sign_in = {"surf": OidcClient(CONFIG)}
    with live_server.db.session() as session:
        federated.sign_in(session, CONFIG, ANNA, now=1.0)
    env = {"AIFACTORY_URL": live_server.url, "AIFACTORY_TOKEN": live_server.admin_token}
    listed = cli("user", "requests", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "Anna" in listed.stdout
    assert "waiting" in listed.stdout
    request_id = json.loads(cli("user", "requests", "--json", env=env).stdout)[0]["id"]
    approved = cli("user", "approve", str(request_id), env=env)
    assert approved.stdout.strip() == f"sign-in request {request_id} approved"
    again = cli("user", "reject", str(request_id), "--json", env=env)
    assert again.returncode == 1
    assert json.loads(again.stderr)["field"] == "request"
