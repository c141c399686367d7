"""The OpenID Connect conversation with one provider: discovery, its signing keys, the code
exchange (with PKCE) and the checks on an ID token. The edge where the facility talks HTTP to
an identity provider; Authlib speaks OAuth 2, joserfc checks the JWTs.

Keys rotate: a token signed with a key id the cached key set lacks makes us fetch the key set
again (at most once a minute, so a flood of forged key ids cannot make us hammer the provider).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from aifactory.domain.federated_identity import Claims
from aifactory.errors import NotReady, Unauthenticated
from aifactory.services.federated.providers import ProviderConfig

METADATA_TTL_S = 3600.0
KEYS_REFETCH_S = 60.0
TIMEOUT_S = 10.0
LEEWAY_S = 60  # clocks differ a little between provider and facility
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")


class ProviderUnreachable(NotReady):
    """The provider did not answer as a provider should: the person can only try later."""


@dataclass(frozen=True, slots=True)
class Authorization:
    """Where to send the browser, and what must be kept (server-side) to finish the sign-in."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class OidcClient:
    """One configured provider. Thread-safe: the portal's sign-ins run in a thread pool."""

    def __init__(self, config: ProviderConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = -KEYS_REFETCH_S

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def label(self) -> str:
        return self.config.label

    def authorization(self, redirect_uri: str) -> Authorization:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # PKCE: 43 to 128 characters (RFC 7636 §4.1)
        with self._oauth(redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=state,
                nonce=nonce,
                code_verifier=verifier,
            )
        return Authorization(str(url), state, nonce, verifier)

    def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> str:
        """The ID token the provider gives for `code` (still to be checked)."""
        try:
            with self._oauth(redirect_uri) as oauth:
                token = oauth.fetch_token(
                    self.metadata()["token_endpoint"], code=code, code_verifier=code_verifier
                )
        except OAuthError as exc:
            raise Unauthenticated(f"{self.label} refused the sign-in: {exc.error}") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{self.label} could not be reached: try again") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated(f"{self.label} sent no ID token")
        return id_token

    def claims(self, id_token: str, *, audience: str, nonce: str | None, now: float) -> Claims:
        """The person an ID token names, after every check OpenID Connect asks of a client:
        signature by the provider's current key, issuer, audience, authorized party, expiry,
        issue time, and the nonce of this sign-in (none for the device flow)."""
        payload = self._verified(id_token)
        expected: dict[str, Any] = {
            "iss": {"essential": True, "value": self.metadata()["issuer"]},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if nonce is not None:
            expected["nonce"] = {"essential": True, "value": nonce}
        try:
            JWTClaimsRegistry(now=int(now), leeway=LEEWAY_S, **expected).validate(payload)
        except JoseError as exc:
            raise Unauthenticated(
                f"the ID token from {self.label} {_why(exc)}", field="id_token"
            ) from exc
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        if len(audiences) > 1 and payload.get("azp") != audience:
            raise Unauthenticated(
                f"the ID token from {self.label} was issued to another client", field="id_token"
            )
        return self._claims_of(payload)

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to sign out at the provider too, if it offers that."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnreachable:
            return None
        if not isinstance(endpoint, str):
            return None
        query = httpx.QueryParams(
            client_id=self.config.client_id, post_logout_redirect_uri=post_logout_redirect_uri
        )
        return f"{endpoint}?{query}"

    def origins(self) -> set[str]:
        """Where this provider's pages are (for the portal's form-action policy): the issuer's
        origin and its endpoints' as far as discovered; never a request of its own."""
        found = {_origin(self.config.issuer)}
        known = self._metadata or {}
        for endpoint in ("authorization_endpoint", "end_session_endpoint"):
            if isinstance(known.get(endpoint), str):
                found.add(_origin(known[endpoint]))
        return found

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or self._clock() - self._metadata_at > METADATA_TTL_S:
                self._metadata = self._discover()
                self._metadata_at = self._clock()
            return self._metadata

    def _discover(self) -> dict[str, Any]:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        found = _get_json(url, self.label)
        if found.get("issuer") != self.config.issuer:
            # OpenID Connect Discovery §4.3: a mismatch means someone else's document.
            raise ProviderUnreachable(f"{self.label}'s discovery names another issuer")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(needed), str):
                raise ProviderUnreachable(f"{self.label}'s discovery lacks {needed}")
        return found

    def _verified(self, id_token: str) -> dict[str, Any]:
        try:
            kid = jws.extract_compact(id_token.encode()).headers().get("kid")  # not trusted
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(
                f"the ID token from {self.label} is malformed", field="id_token"
            ) from exc
        keys = self._key_set(kid)
        try:
            return dict(jwt.decode(id_token, keys, algorithms=SIGNING_ALGORITHMS).claims)
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(
                f"the ID token from {self.label} is not signed by its keys: {exc}",
                field="id_token",
            ) from exc

    def _key_set(self, kid: object) -> KeySet:
        with self._lock:
            stale = self._keys is None or (kid is not None and not _has(self._keys, kid))
            if stale and self._clock() - self._keys_at >= KEYS_REFETCH_S:
                self._keys_at = self._clock()
                found = _get_json(str(self.metadata()["jwks_uri"]), self.label)
                try:
                    self._keys = KeySet.import_key_set(found)  # type: ignore[arg-type]
                except (JoseError, ValueError, KeyError) as exc:
                    raise ProviderUnreachable(f"{self.label}'s key set is malformed") from exc
            if self._keys is None:
                raise ProviderUnreachable(f"{self.label}'s signing keys could not be fetched")
            return self._keys

    def _claims_of(self, payload: dict[str, Any]) -> Claims:
        names = self.config.claims
        entitlements = payload.get(names.entitlements) or ()
        if isinstance(entitlements, str):
            entitlements = (entitlements,)
        return Claims(
            issuer=str(payload["iss"]),
            subject=str(payload["sub"]),
            name=_text(payload.get(names.name)),
            email=_text(payload.get(names.email)),
            email_verified=payload.get("email_verified") is True,
            preferred_username=_text(payload.get(names.preferred_username)),
            home_organisation=_text(payload.get(names.home_organisation)),
            entitlements=tuple(e for e in entitlements if isinstance(e, str)),
        )

    def _oauth(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.secret(),
            scope=" ".join(self.config.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT_S,
            trust_env=False,  # sovereign: no proxy from the environment
        )


def _get_json(url: str, label: str) -> dict[str, Any]:
    try:
        answer = httpx.get(url, timeout=TIMEOUT_S, trust_env=False)
        answer.raise_for_status()
        found = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnreachable(f"{label} could not be reached: try again later") from exc
    if not isinstance(found, dict):
        raise ProviderUnreachable(f"{label} answered {url} with no JSON object")
    return found


_WRONG = {
    "aud": "was issued to another client (aud)",
    "iss": "names another issuer (iss)",
    "nonce": "does not answer this sign-in (nonce): sign in again",
}


def _why(error: JoseError) -> str:
    """What is wrong with an ID token's claims, in words a person can act on."""
    if isinstance(error, ExpiredTokenError):
        return "has expired (exp): sign in again"
    claim = getattr(error, "claim", None)
    if isinstance(error, MissingClaimError):
        return f"lacks the claim {claim!r}"
    if isinstance(error, InvalidClaimError) and isinstance(claim, str):
        return _WRONG.get(claim, f"has a wrong {claim!r} claim")
    return f"is not valid: {error}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _has(keys: KeySet, kid: object) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
