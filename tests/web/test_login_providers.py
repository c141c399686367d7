"""The sign-in seam for a federated login (OIDC): a redirect provider added to the portal is
offered on the sign-in page, the state must come back unchanged, and the user it names gets a
session like any other."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.orm import Session

from aifactory.errors import Unauthenticated
from aifactory.services.tenancy import user_by_name
from aifactory.store.models import User
from aifactory.web.pages import login
from tests.api.helpers import Tenants
from tests.conftest import LiveServer


class FakeIdentityProvider:
    """An identity provider that says at once who the user is (the `login_hint` given)."""

    name = "fedid"
    label = "Test federation"

    def __init__(self, user: str) -> None:
        self.user = user

    def start(self, *, state: str, return_url: str) -> str:
        return f"{return_url}?{urlencode({'state': state, 'code': self.user})}"

    def finish(self, session: Session, query: Mapping[str, str], now: float) -> User:
        if query.get("code") == "nobody":
            raise Unauthenticated("the federation knows no such user")
        return user_by_name(session, query["code"])


@pytest.fixture
def federation() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider("alice")
    login.REDIRECT_PROVIDERS[provider.name] = provider
    yield provider
    del login.REDIRECT_PROVIDERS[provider.name]


def test_a_redirect_provider_signs_in_the_user_it_names(
    live_server: LiveServer, tenants: Tenants, federation: FakeIdentityProvider
) -> None:
    with httpx.Client(base_url=live_server.url, follow_redirects=True) as browser:
        page = browser.get("/login")
        assert "Sign in with Test federation" in page.text
        landed = browser.get("/login/fedid/start", params={"next": "/account"})
        assert landed.url.path == "/account"
        assert "alice" in landed.text


def test_a_wrong_state_or_an_unknown_user_signs_in_nobody(
    live_server: LiveServer, tenants: Tenants, federation: FakeIdentityProvider
) -> None:
    with httpx.Client(base_url=live_server.url) as browser:
        started = browser.get("/login/fedid/start")
        assert started.status_code == 303
        forged = browser.get("/login/fedid/callback", params={"state": "forged", "code": "alice"})
        assert forged.status_code == 401
        assert "aifactory_session" not in browser.cookies
        federation.user = "nobody"
        back = httpx.URL(browser.get("/login/fedid/start").headers["location"])
        refused = browser.get(back.path, params=dict(back.params))
        assert refused.status_code == 401
        assert "the federation knows no such user" in refused.text
        assert "aifactory_session" not in browser.cookies
