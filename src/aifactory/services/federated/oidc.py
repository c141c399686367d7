"""The OpenID Connect conversation with one provider: discovery, its signing keys, the code
exchange (with PKCE) and the checks on an ID token. The edge where the facility talks HTTP to
an identity provider: Authlib's OAuth 2 parameters and PKCE, joserfc's JWT checks, httpx.

A provider is someone else's server, so it may be slow or down. Its calls run outside any lock,
a few at a time (more fail at once rather than hold the API's threads), and a failure is
remembered for a while so that a flood of sign-ins does not retry it each. Keys rotate: a token
with a key id the cached set lacks makes us fetch the set again, at most once a minute, so a
flood of forged key ids cannot make us hammer the provider.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from aifactory.domain.federated_identity import Claims
from aifactory.errors import NotReady, Unauthenticated
from aifactory.services.federated.providers import ProviderConfig

METADATA_TTL_S = 3600.0
KEYS_REFETCH_S = 60.0  # a key id we do not know: fetch the key set again at most this often
RETRY_AFTER_FAILURE_S = 15.0  # a provider that failed is not asked again before this
CALLS_AT_ONCE = 4  # per provider; more sign-ins at that moment are told to try again
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
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
        self._lock = threading.Lock()  # guards the caches only; never held over a request
        self._calls = threading.BoundedSemaphore(CALLS_AT_ONCE)
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._failed_at: float | None = None
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
        url = prepare_grant_uri(
            self.metadata()["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.config.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return Authorization(url, state, nonce, verifier)

    def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> str:
        """The ID token the provider gives for `code` (still to be checked)."""
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )
        # client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1)
        auth = (quote(self.config.client_id, safe=""), quote(self.config.secret(), safe=""))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        endpoint = self.metadata()["token_endpoint"]
        with self._calling():
            try:
                answer = httpx.post(
                    endpoint,
                    content=body,
                    headers=headers,
                    auth=auth,
                    timeout=TIMEOUT,
                    trust_env=False,  # sovereign: no proxy from the environment
                )
                token = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderUnreachable(f"{self.label} could not be reached: try again") from exc
        if not isinstance(token, dict):
            raise ProviderUnreachable(f"{self.label} answered the sign-in with no JSON object")
        if answer.is_error or "error" in token:
            error = token.get("error") or answer.status_code
            raise Unauthenticated(f"{self.label} refused the sign-in: {error}")
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated(f"{self.label} sent no ID token")
        return id_token

    def claims(
        self,
        id_token: str,
        *,
        audience: str,
        nonce: str | None,
        now: float,
        max_age_s: float | None = None,
    ) -> Claims:
        """The person an ID token names, after every check OpenID Connect asks of a client:
        signature by the provider's current key, issuer, audience, authorized party, expiry,
        issue time, and the nonce of this sign-in (none for the device flow, which instead
        takes only tokens issued in the last `max_age_s`)."""
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
        issued_at = payload["iat"]
        if max_age_s is not None and (
            not isinstance(issued_at, int | float) or issued_at < now - max_age_s
        ):
            raise Unauthenticated(
                f"the ID token from {self.label} is too old (iat): sign in again", field="id_token"
            )
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        azp = payload.get("azp")
        if (azp is not None or len(audiences) > 1) and azp != audience:  # OIDC Core §3.1.3.7
            raise Unauthenticated(
                f"the ID token from {self.label} was issued to another client (azp)",
                field="id_token",
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
        """The discovery document: cached an hour; the last good one while the provider fails."""
        now = self._clock()
        with self._lock:
            known, fresh = self._metadata, now - self._metadata_at <= METADATA_TTL_S
            failed_lately = (
                self._failed_at is not None and now - self._failed_at < RETRY_AFTER_FAILURE_S
            )
        if known is not None and (fresh or failed_lately):
            return known
        if failed_lately:
            raise ProviderUnreachable(f"{self.label} could not be reached: try again in a minute")
        try:
            with self._calling():
                found = self._discover()
        except ProviderUnreachable:
            with self._lock:
                self._failed_at = now
            if known is not None:
                return known
            raise
        with self._lock:
            self._metadata, self._metadata_at, self._failed_at = found, now, None
        return found

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
        now = self._clock()
        with self._lock:
            keys = self._keys
            stale = keys is None or (kid is not None and not _has(keys, kid))
            wait_s = KEYS_REFETCH_S if keys is not None else RETRY_AFTER_FAILURE_S
            fetch = stale and now - self._keys_at >= wait_s
            if fetch:
                self._keys_at = now  # this request fetches; others meanwhile use what is known
        if fetch:
            try:
                jwks_uri = str(self.metadata()["jwks_uri"])
                with self._calling():
                    found = _get_json(jwks_uri, self.label)
                keys = KeySet.import_key_set(found)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise ProviderUnreachable(f"{self.label}'s key set is malformed") from exc
            except ProviderUnreachable:
                if keys is None:
                    raise
            else:
                with self._lock:
                    self._keys = keys
        if keys is None:
            raise ProviderUnreachable(f"{self.label}'s signing keys could not be fetched")
        return keys

    @contextmanager
    def _calling(self) -> Iterator[None]:
        """One of this provider's few calls at a time; none left: try again, at once."""
        if not self._calls.acquire(timeout=1.0):
            raise ProviderUnreachable(f"{self.label} is slow to answer: try again in a minute")
        try:
            yield
        finally:
            self._calls.release()

    def _claims_of(self, payload: dict[str, Any]) -> Claims:
        names = self.config.claims
        entitlements = payload.get(names.entitlements) or ()
        if isinstance(entitlements, str):
            entitlements = (entitlements,)
        subject = payload["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise Unauthenticated(f"the ID token from {self.label} names no subject (sub)")
        return Claims(
            issuer=str(payload["iss"]),
            subject=subject,
            name=_text(payload.get(names.name)),
            email=_text(payload.get(names.email)),
            email_verified=payload.get("email_verified") is True,
            preferred_username=_text(payload.get(names.preferred_username)),
            home_organisation=_text(payload.get(names.home_organisation)),
            entitlements=tuple(e for e in entitlements if isinstance(e, str)),
        )


def _get_json(url: str, label: str) -> dict[str, Any]:
    try:
        answer = httpx.get(url, timeout=TIMEOUT, trust_env=False)
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


def _text(value: object, limit: int = 254) -> str | None:
    """A claim's text, or None when it is missing, blank or longer than any column keeps."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value
