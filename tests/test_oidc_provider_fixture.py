"""The tests' OpenID provider (tests/oidc_provider.py, oidc-provider/server.mjs) works, driven
from Python with httpx only: discovery, keys, the device flow end to end, the authorization code
flow with PKCE, refresh, sign-out, and key rotation by restart."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet

from tests.oidc_provider import (
    ALL_SCOPES,
    CLI_CLIENT_ID,
    DEFAULT_REDIRECT_URI,
    DEVICE_CODE_GRANT,
    ROTATED_KEYS,
    SHORT_CLIENT_ID,
    WEB_CLIENT_ID,
    WEB_CLIENT_SECRET,
    OidcProvider,
    complete_browser_login,
    complete_device_login,
    web_client,
)


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    """A provider of this module's own: these tests restart it."""
    try:
        with OidcProvider() as running:
            yield running
    except RuntimeError as exc:
        pytest.fail(str(exc))


def verified_claims(provider: OidcProvider, token: str, audience: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(provider.jwks())  # type: ignore[arg-type]
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    claims: dict[str, Any] = dict(decoded.claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": audience},
    ).validate(claims)
    return claims


def device_login(provider: OidcProvider, username: str, password: str) -> dict[str, Any]:
    meta = provider.discovery()
    started = (
        httpx.post(
            meta["device_authorization_endpoint"],
            data={"client_id": CLI_CLIENT_ID, "scope": ALL_SCOPES},
        )
        .raise_for_status()
        .json()
    )
    assert started["user_code"]
    assert started["verification_uri"] == provider.url("/device")
    assert started["verification_uri_complete"].startswith(started["verification_uri"])
    poll = {
        "grant_type": DEVICE_CODE_GRANT,
        "device_code": started["device_code"],
        "client_id": CLI_CLIENT_ID,
    }
    pending = httpx.post(meta["token_endpoint"], data=poll)
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    complete_device_login(provider, started["verification_uri_complete"], username, password)
    tokens: dict[str, Any] = httpx.post(meta["token_endpoint"], data=poll).raise_for_status().json()
    return tokens


def test_discovery_names_every_endpoint_and_serves_keys(provider: OidcProvider) -> None:
    meta = provider.discovery()
    assert meta["issuer"] == provider.issuer
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "device_authorization_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
    ):
        assert meta[endpoint].startswith(provider.issuer + "/"), endpoint
    assert {"schac_home_organization", "entitlements", "offline_access"} <= set(
        meta["scopes_supported"]
    )
    assert "S256" in meta["code_challenge_methods_supported"]
    keys = provider.jwks()["keys"]
    assert [(k["kid"], k["kty"], k["alg"]) for k in keys] == [("test-rsa-1", "RSA", "RS256")]
    assert "d" not in keys[0]  # the public half only


def test_device_flow_gives_id_token_with_federation_claims(provider: OidcProvider) -> None:
    tokens = device_login(provider, "anna", "anna-password")
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]
    claims = verified_claims(provider, tokens["id_token"], CLI_CLIENT_ID)
    assert claims["sub"] == "uva-anna-de-vries"
    assert claims["email"] == "a.devries@uva.nl"
    assert claims["name"] == "Anna de Vries"
    assert claims["schac_home_organization"] == "uva.nl"
    assert (
        "urn:mace:surf.nl:aifactory:project:climate-llm:member" in claims["eduperson_entitlement"]
    )
    userinfo = (
        httpx.get(
            provider.discovery()["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        .raise_for_status()
        .json()
    )
    assert userinfo["schac_home_organization"] == "uva.nl"
    refreshed = (
        httpx.post(
            provider.discovery()["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": CLI_CLIENT_ID,
            },
        )
        .raise_for_status()
        .json()
    )
    assert verified_claims(provider, refreshed["id_token"], CLI_CLIENT_ID)["sub"] == claims["sub"]


def test_device_flow_refuses_a_wrong_password(provider: OidcProvider) -> None:
    started = (
        httpx.post(
            provider.discovery()["device_authorization_endpoint"],
            data={"client_id": CLI_CLIENT_ID, "scope": "openid"},
        )
        .raise_for_status()
        .json()
    )
    with pytest.raises(RuntimeError, match="refused the login"):
        complete_device_login(provider, started["verification_uri_complete"], "anna", "wrong")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_code_login(
    provider: OidcProvider, client_id: str, username: str, password: str
) -> tuple[httpx.Client, dict[str, Any]]:
    meta = provider.discovery()
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = (
        meta["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "client_id": client_id,
                "response_type": "code",
                "redirect_uri": DEFAULT_REDIRECT_URI,
                "scope": "openid profile email schac_home_organization entitlements",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    browser = httpx.Client(timeout=10)
    back = complete_browser_login(browser, url, username, password)
    location = back.headers["location"]
    assert location.startswith(DEFAULT_REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    assert query["iss"] == [provider.issuer]
    tokens: dict[str, Any] = (
        httpx.post(
            meta["token_endpoint"],
            auth=(client_id, WEB_CLIENT_SECRET),
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": DEFAULT_REDIRECT_URI,
                "code_verifier": verifier,
            },
        )
        .raise_for_status()
        .json()
    )
    claims = verified_claims(provider, tokens["id_token"], client_id)
    assert claims["nonce"] == nonce
    return browser, tokens


def test_authorization_code_flow_with_pkce_and_sign_out(provider: OidcProvider) -> None:
    browser, tokens = authorization_code_login(provider, WEB_CLIENT_ID, "bram", "bram-password")
    claims = verified_claims(provider, tokens["id_token"], WEB_CLIENT_ID)
    assert claims["sub"] == "tud-bram-jansen"
    assert claims["schac_home_organization"] == "tudelft.nl"
    assert claims["eduperson_entitlement"] == ["urn:mace:surf.nl:aifactory:researcher"]
    # Without PKCE the provider refuses the request.
    refused = httpx.get(
        provider.discovery()["authorization_endpoint"],
        params={
            "client_id": WEB_CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "state": "s",
        },
    )
    assert refused.is_redirect
    assert "error=invalid_request" in refused.headers["location"]
    # RP-initiated sign-out ends the provider's session and goes back to the portal.
    end = (
        provider.discovery()["end_session_endpoint"]
        + "?"
        + urlencode(
            {
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": "http://127.0.0.1:8000/login",
                "state": "bye",
            }
        )
    )
    out = complete_browser_login(
        browser, end, "", "", stop=lambda url: url.startswith("http://127.0.0.1:8000/")
    )
    assert out.headers["location"] == "http://127.0.0.1:8000/login?state=bye"
    browser.close()


def test_short_lived_id_tokens_for_one_client(provider: OidcProvider) -> None:
    browser, tokens = authorization_code_login(provider, SHORT_CLIENT_ID, "anna", "anna-password")
    browser.close()
    claims = verified_claims(provider, tokens["id_token"], SHORT_CLIENT_ID)
    assert claims["exp"] - claims["iat"] == 2


def test_restart_with_rotated_keys_changes_the_signing_key(provider: OidcProvider) -> None:
    issuer = provider.issuer
    before = device_login(provider, "anna", "anna-password")["id_token"]
    provider.restart(keys=ROTATED_KEYS)
    assert provider.issuer == issuer
    assert [k["kid"] for k in provider.jwks()["keys"]] == ["test-rsa-2"]
    after = device_login(provider, "anna", "anna-password")["id_token"]
    assert verified_claims(provider, after, CLI_CLIENT_ID)["sub"] == "uva-anna-de-vries"
    with pytest.raises(InvalidKeyIdError):  # the old kid is gone from the JWKS
        verified_claims(provider, before, CLI_CLIENT_ID)


def test_a_client_registered_while_it_runs_signs_in(provider: OidcProvider) -> None:
    provider.register_client(
        web_client("portal-on-another-port", WEB_CLIENT_SECRET, id_token_ttl=5)
    )
    browser, tokens = authorization_code_login(
        provider, "portal-on-another-port", "anna", "anna-password"
    )
    browser.close()
    claims = verified_claims(provider, tokens["id_token"], "portal-on-another-port")
    assert claims["exp"] - claims["iat"] == 5
