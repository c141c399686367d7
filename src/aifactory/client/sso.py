"""Signing in with one's institution from a terminal: the OAuth 2.0 device authorization grant
(RFC 8628) against the facility's provider, then the provider's ID token exchanged for a
short-lived facility token. No token is ever copied by hand.

The provider's refresh token is kept (0600, beside the facility token) and used for the next
facility token when this one ends, so that a person their institution has signed off loses the
facility within the hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from aifactory.client.client import ApiError, Client, Json, Unreachable

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT_S = 15.0


class SignInFailed(Exception):
    """The provider refused, or the person did not finish in time."""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    label: str
    issuer: str
    client_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """What the person must do (open `verification_uri`, type `user_code`), and how to wait."""

    provider: Provider
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    device_code: str
    interval_s: float
    expires_at: float
    token_endpoint: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A facility token and what renews it (saved by `aifactory login --sso`)."""

    token: str
    token_id: int
    expires_at: str
    user: str
    provider: str
    refresh_token: str | None


def providers(url: str) -> list[Provider]:
    """The facility's providers that sign in from a terminal."""
    with Client(url) as api:
        found = api.sign_in_providers()
    return [
        Provider(p["name"], p["label"], p["issuer"], p["cli_client_id"], tuple(p["scopes"]))
        for p in found
        if p.get("cli_client_id")
    ]


def start(provider: Provider, *, clock: Callable[[], float] = time.time) -> DeviceLogin:
    metadata = _metadata(provider)
    endpoint = metadata.get("device_authorization_endpoint")
    if not isinstance(endpoint, str):
        raise SignInFailed(f"{provider.label} offers no sign-in from a terminal (device flow)")
    scopes = " ".join(dict.fromkeys((*provider.scopes, "offline_access")))
    answer = _post(endpoint, {"client_id": provider.client_id, "scope": scopes}, provider)
    return DeviceLogin(
        provider=provider,
        user_code=str(answer["user_code"]),
        verification_uri=str(answer["verification_uri"]),
        verification_uri_complete=answer.get("verification_uri_complete"),
        device_code=str(answer["device_code"]),
        interval_s=float(answer.get("interval", 5)),
        expires_at=clock() + float(answer.get("expires_in", 600)),
        token_endpoint=str(metadata["token_endpoint"]),
    )


def wait(
    login: DeviceLogin,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Json:
    """The provider's tokens once the person has signed in (RFC 8628 §3.4-3.5 polling)."""
    interval = login.interval_s
    body = {
        "grant_type": DEVICE_GRANT,
        "device_code": login.device_code,
        "client_id": login.provider.client_id,
    }
    while clock() < login.expires_at:
        sleep(interval)
        answer = _token_request(login.token_endpoint, body, login.provider)
        error = answer.get("error")
        if error is None:
            return answer
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            reason = answer.get("error_description") or error
            raise SignInFailed(f"{login.provider.label} did not sign you in: {reason}")
    raise SignInFailed("the sign-in was not finished in time: run the command again")


def exchange(url: str, provider: Provider, tokens: Json) -> SignedIn:
    """A facility token for the person the provider's ID token names."""
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed(f"{provider.label} sent no ID token: run `aifactory login --sso` again")
    with Client(url) as api:
        issued = api.sso_token(provider.name, id_token)
    return SignedIn(
        token=issued["token"],
        token_id=int(issued["id"]),
        expires_at=str(issued["expires_at"]),
        user=issued["user"],
        provider=provider.name,
        refresh_token=tokens.get("refresh_token"),
    )


def renew(url: str, provider: Provider, refresh_token: str) -> SignedIn:
    """The next facility token, from the provider's refresh token (which the provider may
    refuse: the person's institution has the last word)."""
    metadata = _metadata(provider)
    body = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": provider.client_id,
    }
    answer = _token_request(str(metadata["token_endpoint"]), body, provider)
    if "error" in answer:
        raise SignInFailed(
            f"{provider.label} ended your sign-in: run `aifactory login --sso` again"
        )
    if "refresh_token" not in answer:
        answer = {**answer, "refresh_token": refresh_token}
    return exchange(url, provider, answer)


def sign_out(url: str, signed: SignedIn, provider: Provider | None) -> None:
    """Revoke the facility token, and the provider's refresh token where it offers revocation."""
    try:
        with Client(url, signed.token) as api:
            api.revoke_token(signed.token_id)
    except ApiError as exc:
        if exc.status != 401:  # already ended: nothing to revoke
            raise
    if provider is None or signed.refresh_token is None:
        return
    endpoint = _metadata(provider).get("revocation_endpoint")
    if isinstance(endpoint, str):
        body = {
            "token": signed.refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": provider.client_id,
        }
        _post(endpoint, body, provider, check=False)


def _metadata(provider: Provider) -> Json:
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        answer = httpx.get(url, timeout=TIMEOUT_S, trust_env=False)
        answer.raise_for_status()
        found: Json = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unreachable(f"{provider.label} ({provider.issuer}) could not be reached") from exc
    if not isinstance(found, dict) or found.get("issuer") != provider.issuer:
        raise SignInFailed(f"{provider.issuer} answered with another provider's description")
    return found


def _token_request(endpoint: str, body: dict[str, str], provider: Provider) -> Json:
    """A token endpoint's answer; its OAuth errors (400 with `error`) are answers too."""
    try:
        answer = httpx.post(endpoint, data=body, timeout=TIMEOUT_S, trust_env=False)
        found: Any = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unreachable(f"{provider.label} could not be reached") from exc
    if not isinstance(found, dict) or (answer.is_error and "error" not in found):
        raise SignInFailed(f"{provider.label} answered {answer.status_code}")
    return found


def _post(endpoint: str, body: dict[str, str], provider: Provider, *, check: bool = True) -> Json:
    try:
        answer = httpx.post(endpoint, data=body, timeout=TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        raise Unreachable(f"{provider.label} could not be reached") from exc
    if not check:
        return {}
    try:
        found: Any = answer.json()
    except ValueError:
        found = {}
    if answer.is_error or not isinstance(found, dict):
        reason = found.get("error_description") if isinstance(found, dict) else None
        raise SignInFailed(f"{provider.label} refused: {reason or answer.status_code}")
    return found
