"""Federated sign-in against a real OpenID provider (node-oidc-provider, tests/oidc_provider.py):
the portal's authorization code flow with PKCE, walked through the provider's own pages with
httpx; what must be refused (a replayed or a foreign state, an institution not served, an ID
token for another client, an expired one, one signed with a key not the provider's) and what
must keep working (the provider's key rotated); linking; sign-out at the provider too; and
the CLI's exchange of a device-flow ID token."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from aifactory.services.login import open_session
from aifactory.store.models import (
    ApiToken,
    AuditEvent,
    Member,
    Project,
    SignInAttempt,
    User,
    UserIdentity,
)
from aifactory.web.pages import login
from aifactory.web.pages.login import STATE_COOKIE
from aifactory.web.session import COOKIE
from aifactory.web.throttle import Throttle
from tests.federated_portal import Federated, federated_fixture  # noqa: F401 - the fixture
from tests.oidc_provider import (
    KEYS,
    ROTATED_KEYS,
    complete_browser_login,
    follow_forms,
    page_forms,
)


def test_a_researcher_signs_in_with_their_institution_and_is_provisioned(
    federated: Federated,
) -> None:
    with federated.browser() as browser:
        page = browser.get("/login")
        assert "Sign in with SURFconext (test)" in page.text
        landed = federated.sign_in(browser, "anna")
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/account"
        account = browser.get("/account")
        assert account.status_code == 200
        assert "a.devries" in account.text
        assert "uva-anna-de-vries" in account.text  # the linked identity
        assert browser.cookies.get(STATE_COOKIE) is None  # used up
    with federated.server.db.read() as session:
        user = session.scalars(select(User).where(User.name == "a.devries")).one()
        assert (user.email, user.facility_role) == ("a.devries@uva.nl", "user")
        memberships = dict(
            session.execute(
                select(Project.name, Member.role)
                .join(Member, Member.project_id == Project.id)
                .where(Member.user_id == user.id)
            ).all()
        )
    assert memberships == {"a.devries-pg": "owner", "climate-llm": "member"}
    with federated.browser() as again:  # a second sign-in: the same account
        assert federated.sign_in(again, "anna").status_code == 303
    with federated.server.db.read() as session:
        assert len(session.scalars(select(UserIdentity)).all()) == 1


def test_a_replayed_or_foreign_state_signs_in_nobody(federated: Federated) -> None:
    with federated.browser() as browser:
        start = browser.get("/login/surf/start")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        back = complete_browser_login(browser, start.headers["location"], "anna", "anna-password")
        callback = back.headers["location"]
        assert browser.get(callback).status_code == 303  # signed in
    with federated.browser() as attacker:  # the same answer again, even with the state cookie
        attacker.cookies.set(STATE_COOKIE, f"{state} /", path="/login")
        replayed = attacker.get(callback)
        assert replayed.status_code == 401
        assert "already used" in replayed.text
        assert attacker.cookies.get(COOKIE) is None
    with federated.browser() as victim:  # an answer meant for another browser
        victim.cookies.set(STATE_COOKIE, "another-state /", path="/login")
        foreign = victim.get(callback)
        assert foreign.status_code == 401
        assert "The sign-in expired" in foreign.text


def test_sign_ins_started_from_one_address_are_throttled(
    federated: Federated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may start a sign-in, and each keeps an attempt for ten minutes: not unboundedly."""
    monkeypatch.setattr(login, "STARTS", Throttle(limit=2, window_s=600.0))
    with federated.browser() as browser:
        assert [browser.get("/login/surf/start").status_code for _ in range(3)] == [303, 303, 429]
        assert "Too many sign-ins from your address" in browser.get("/login/surf/start").text
    with federated.server.db.read() as session:
        assert len(session.scalars(select(SignInAttempt)).all()) == 2


def test_an_institution_the_facility_does_not_serve_is_told_so(federated: Federated) -> None:
    with federated.browser() as browser:
        refused = federated.sign_in(browser, "bram")
        assert refused.status_code == 401
        assert "does not serve your institution (tudelft.nl)" in refused.text
        assert browser.cookies.get(COOKIE) is None
    with federated.server.db.read() as session:
        assert (
            session.scalars(select(User).where(User.email == "b.jansen@tudelft.nl")).first() is None
        )


def test_an_expired_id_token_or_a_refusal_at_the_provider_is_a_clear_page(
    federated: Federated,
) -> None:
    federated.server.state.clock = lambda: time.time() + 7200  # the facility two hours on
    with federated.browser() as browser:
        late = federated.sign_in(browser, "anna")
        assert late.status_code == 401
        assert "has expired (exp): sign in again" in late.text
        assert browser.cookies.get(COOKIE) is None
    federated.server.state.clock = time.time
    with federated.browser() as browser:  # the person presses "cancel" at the provider
        start = browser.get("/login/surf/start")
        login_page = browser.get(start.headers["location"])
        while login_page.is_redirect:
            login_page = browser.get(urljoin(str(login_page.url), login_page.headers["location"]))
        (abort,) = [f for f in page_forms(login_page.text) if f.id == "abort"]
        back = browser.post(urljoin(str(login_page.url), abort.action), data=dict(abort.fields))
        while back.is_redirect and not back.headers["location"].startswith(federated.url):
            back = browser.get(urljoin(str(back.url), back.headers["location"]))
        refused = browser.get(back.headers["location"])
        assert refused.status_code == 401
        assert "did not sign you in" in refused.text
    with federated.server.db.read() as session:
        failed = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.failed"))
        assert len(failed.all()) == 2


def test_sign_out_ends_the_provider_session_too(federated: Federated) -> None:
    with federated.browser() as browser:
        federated.sign_in(browser, "anna")
        policy = browser.get("/account").headers["content-security-policy"]
        # The sign-out form's answer is a redirect to the provider: form-action allows it.
        assert f"form-action 'self' {federated.provider.issuer};" in policy
        csrf = _csrf(browser)
        out = browser.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        ended = out.headers["location"]
        assert ended.startswith(federated.provider.discovery()["end_session_endpoint"])
        assert parse_qs(urlsplit(ended).query)["post_logout_redirect_uri"] == [
            f"{federated.url}/login"
        ]
        back = follow_forms(browser, ended, stop=lambda url: url.startswith(federated.url))
        assert back.headers["location"] == f"{federated.url}/login"
        assert browser.get("/account").status_code == 303  # signed out here
        start = browser.get("/login/surf/start")
        with pytest.raises(RuntimeError, match="asks to sign in"):  # and at the provider
            follow_forms(browser, start.headers["location"])


def test_a_local_account_links_an_identity_and_then_signs_in_with_it(
    federated: Federated,
) -> None:
    db = federated.server.db
    with db.session() as session:
        admin = session.scalars(select(User).where(User.name == "admin")).one()
        cookie = open_session(session, admin, provider="password", source=None, now=time.time())
    with federated.browser() as browser:
        browser.cookies.set(COOKIE, cookie)
        start = browser.post("/account/identities/surf", data={"csrf_token": _csrf(browser)})
        assert start.status_code == 303
        back = complete_browser_login(browser, start.headers["location"], "anna", "anna-password")
        linked = browser.get(back.headers["location"])
        assert linked.headers["location"] == "/account?linked=1"
        assert "uva-anna-de-vries" in browser.get("/account").text
    with federated.browser() as later:
        assert federated.sign_in(later, "anna").status_code == 303
        assert "<dd>admin</dd>" in later.get("/account").text  # no new account
    with db.read() as session:
        assert session.scalars(select(User).where(User.name == "a.devries")).first() is None


def test_the_cli_exchanges_a_device_flow_id_token_for_a_short_lived_token(
    federated: Federated,
) -> None:
    issued = federated.exchange(federated.cli_id_token("anna"))
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["user"] == "a.devries"
    me = httpx.get(
        f"{federated.url}/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.json()["name"] == "a.devries"
    with federated.server.db.read() as session:
        row = session.get(ApiToken, body["id"])
        assert row is not None
        assert row.expires_at is not None
        assert row.expires_at - row.created_at == 3600


def test_an_id_token_for_another_client_is_refused(federated: Federated) -> None:
    """The portal's own ID token is not one the CLI client was given: wrong audience."""
    redirect = f"{federated.url}/login/surf/callback"
    asked = federated.client.authorization(redirect)
    with httpx.Client(timeout=15) as browser:
        back = complete_browser_login(browser, asked.url, "anna", "anna-password")
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    portal_token = federated.client.exchange(
        code=code, code_verifier=asked.code_verifier, redirect_uri=redirect
    )
    refused = federated.exchange(portal_token)
    assert refused.status_code == 401
    assert refused.json()["errors"] == [{"field": "id_token", "reason": refused.json()["message"]}]
    assert "aud" in refused.json()["message"]


def test_an_expired_id_token_is_refused(federated: Federated) -> None:
    token = federated.cli_id_token("anna")
    federated.server.state.clock = lambda: time.time() + 7200  # two hours on
    refused = federated.exchange(token)
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]


def test_an_id_token_is_taken_only_while_fresh(federated: Federated) -> None:
    token = federated.cli_id_token("anna")
    federated.server.state.clock = lambda: time.time() + 11 * 60  # unexpired, but not fresh
    refused = federated.exchange(token)
    assert refused.status_code == 401
    assert "too old (iat)" in refused.json()["message"]


def test_a_token_signed_with_another_key_is_refused(federated: Federated) -> None:
    genuine = federated.cli_id_token("anna")
    claims = jwt.decode(genuine, _provider_keys(federated)).claims
    forger = RSAKey.generate_key(2048, parameters={"kid": "test-rsa-1"})  # the provider's kid
    forged = jwt.encode({"alg": "RS256", "kid": "test-rsa-1"}, claims, forger)
    refused = federated.exchange(forged)
    assert refused.status_code == 401
    assert "not signed by its keys" in refused.json()["message"]
    assert federated.exchange(genuine).status_code == 201


def test_a_rotated_provider_key_is_fetched_and_trusted(federated: Federated) -> None:
    assert federated.exchange(federated.cli_id_token("anna")).status_code == 201
    try:
        federated.provider.restart(keys=ROTATED_KEYS)
        rotated = federated.cli_id_token("anna")
        assert jws.extract_compact(rotated.encode()).headers()["kid"] == "test-rsa-2"
        # Unknown key ids are fetched at most once a minute: a flood of forged ids cannot make
        # the facility hammer the provider. A minute on, the new key is fetched and trusted.
        federated.keys_clock.advance(61)
        assert federated.exchange(rotated).status_code == 201
    finally:
        federated.provider.restart(keys=KEYS)


def _csrf(browser: httpx.Client) -> str:
    page = browser.get("/account").text
    marker = 'name="csrf_token" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def _provider_keys(federated: Federated) -> KeySet:
    return KeySet.import_key_set(federated.provider.jwks())  # type: ignore[arg-type]
