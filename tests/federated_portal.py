"""A live portal that trusts the tests' real OpenID provider (tests/oidc_provider.py): the
`federated` fixture, and what tests do with it (sign in at the provider's pages, get an ID
token for the CLI through the device flow, exchange it)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from aifactory.domain.tenancy import OrgKind
from aifactory.services.federated.oidc import OidcClient
from aifactory.services.federated.providers import ProviderConfig, RuleConfig
from aifactory.store.db import Database
from aifactory.store.models import Organisation, Project
from aifactory.web.pages import login
from aifactory.web.throttle import Throttle
from tests.conftest import FakeClock, LiveServer, serving
from tests.oidc_provider import (
    CLI_CLIENT_ID,
    OidcProvider,
    complete_browser_login,
    complete_device_login,
    web_client,
)

SCOPES = ["openid", "profile", "email", "schac_home_organization", "entitlements"]
PROJECT_RULE = (
    r"urn:mace:surf\.nl:aifactory:project:(?P<project>[^:]+):(?P<role>owner|member|viewer)"
)


@dataclass
class Federated:
    server: LiveServer
    provider: OidcProvider
    client: OidcClient
    keys_clock: FakeClock  # when the facility last fetched the provider's keys, by this clock

    @property
    def url(self) -> str:
        return self.server.url

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15)  # follows no redirect, as needed

    def sign_in(
        self, browser: httpx.Client, user: str, *, next_url: str = "/account"
    ) -> httpx.Response:
        """Start at the portal's button, sign in at the provider, come back: our answer."""
        start = browser.get("/login/surf/start", params={"next": next_url})
        assert start.status_code == 303, start.text
        assert start.headers["location"].startswith(self.provider.issuer)
        back = complete_browser_login(browser, start.headers["location"], user, f"{user}-password")
        return browser.get(back.headers["location"])

    def cli_id_token(self, user: str) -> str:
        """An ID token for the facility's CLI client, through the device flow."""
        meta = self.provider.discovery()
        asked = httpx.post(
            meta["device_authorization_endpoint"],
            data={"client_id": CLI_CLIENT_ID, "scope": " ".join(SCOPES)},
        ).json()
        complete_device_login(
            self.provider, asked["verification_uri_complete"], user, f"{user}-password"
        )
        tokens = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": asked["device_code"],
                "client_id": CLI_CLIENT_ID,
            },
        ).json()
        token: str = tokens["id_token"]
        return token

    def exchange(self, id_token: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/v1/auth/sso/token", json={"provider": "surf", "id_token": id_token}
        )


@pytest.fixture(name="federated")
def federated_fixture(
    sqlite_url: str, tmp_path: Path, oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Federated]:
    """A live portal (SQLite) that trusts the test provider, with a web client of its own (and
    its own count of sign-ins started: every test comes from 127.0.0.1)."""
    monkeypatch.setattr(login, "STARTS", Throttle(limit=30, window_s=600.0))
    db = Database(sqlite_url)
    with serving(db, tmp_path) as server:
        registered = oidc_provider.register_client(
            web_client(
                client_id=f"portal-{urlsplit(server.url).port}",
                client_secret="portal-secret-of-this-test",
                redirect_uris=[f"{server.url}/login/surf/callback"],
                post_logout_redirect_uris=[f"{server.url}/login"],
            )
        )
        config = ProviderConfig(
            name="surf",
            label="SURFconext (test)",
            issuer=oidc_provider.issuer,
            client_id=registered["client_id"],
            client_secret=registered["client_secret"],
            cli_client_id=CLI_CLIENT_ID,
            scopes=SCOPES,
            organisation_kinds={"uva.nl": OrgKind.UNIVERSITY},
            entitlements=[RuleConfig(match=PROJECT_RULE, projects=["climate-llm"])],
            allow_http=True,
        )
        keys_clock = FakeClock(time.time())
        client = OidcClient(config, clock=keys_clock)
        server.state.sign_in = {"surf": client}
        with db.session() as session:  # the project Anna's entitlement names
            org = Organisation(name="surf.nl", kind="research_institute", created_at=time.time())
            session.add(org)
            session.flush()
            session.add(Project(name="climate-llm", organisation_id=org.id, created_at=time.time()))
        yield Federated(server, oidc_provider, client, keys_clock)
    db.dispose()


ADDRESS = re.compile(r"^\s+(http\S+)$", re.MULTILINE)


def cli_sso_login(provider: OidcProvider, env: dict[str, str], user: str) -> str:
    """`aifactory login --sso` as a person runs it: the CLI prints an address, the person signs
    in there (the provider's pages, walked with httpx); returns what the CLI printed."""
    login = subprocess.Popen(
        [sys.executable, "-m", "aifactory", "login", "--sso"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert login.stdout is not None
    with login.stdout:
        printed = ""
        while not (address := ADDRESS.search(printed)):
            line = login.stdout.readline()
            assert line, f"the CLI ended without an address: {printed}"
            printed += line
        complete_device_login(provider, address.group(1), user, f"{user}-password")
        printed += login.stdout.read()
    assert login.wait(timeout=60) == 0, printed
    return printed
