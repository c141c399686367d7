"""Signing in to the portal: login providers, and the browser sessions they open.

A provider turns what the person gives into a `User`. Two are built in (user name + password,
and an API token); a federated sign-in (OpenID Connect, as research and education federations
use) is in `services.federated`. Whatever the provider, what follows is the same: a
session row, a random cookie token kept only as its SHA-256, a CSRF token for the forms, and
the same `Principal` the API builds from a token, so the permission matrix is the one check.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from aifactory.errors import Unauthenticated
from aifactory.governance import audit
from aifactory.services.auth import authenticate_token, hash_token, principal_of
from aifactory.services.passwords import fresh_hash, verify_password
from aifactory.services.principal import Principal
from aifactory.store.models import ApiToken, User, WebSession

SESSION_TTL_S = 12 * 3600  # a working day; then sign in again


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # the <input type>
    autocomplete: str = "off"


@dataclass(frozen=True, slots=True)
class Identified:
    """Whom a provider found (in a read transaction), and the API token they signed in with, if
    one: a session opened with a token ends when the token is revoked or expires. `new_hash`:
    their password hashed with today's parameters, to store when the session is opened."""

    user_id: int
    user_name: str
    api_token_id: int | None = None
    new_hash: str | None = None

    @classmethod
    def of(cls, user: User) -> Identified:
        return cls(user.id, user.name)


class FormProvider(Protocol):
    """Signs in from a form posted to the portal."""

    name: str
    label: str
    fields: tuple[FormField, ...]

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> Identified: ...


class PasswordLogin:
    name = "password"
    label = "User name and password"
    fields: tuple[FormField, ...] = (
        FormField("username", "User name", "text", "username"),
        FormField("password", "Password", "password", "current-password"),
    )

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> Identified:  # noqa: ARG002
        name, password = form.get("username", "").strip(), form.get("password", "")
        user = verify_password(session, name, password)
        return Identified(user.id, user.name, new_hash=fresh_hash(user.password_hash, password))


class TokenLogin:
    name = "token"
    label = "API token"
    fields: tuple[FormField, ...] = (FormField("token", "API token", "password", "off"),)

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> Identified:
        token = form.get("token", "").strip()
        principal = authenticate_token(session, token, now).principal
        used = session.scalars(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
        return Identified(principal.user_id, principal.name, used.one())


BUILT_IN: tuple[FormProvider, ...] = (PasswordLogin(), TokenLogin())


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    session_id: int
    csrf_token: str
    provider: str
    has_password: bool


def open_session(
    session: Session,
    who: User | Identified,
    *,
    provider: str,
    source: str | None,
    now: float,
    ttl_s: float = SESSION_TTL_S,
) -> str:
    """A new session for `who`; returns the cookie's token (shown once, as API tokens are)."""
    found = who if isinstance(who, Identified) else Identified.of(who)
    if found.new_hash is not None:
        session.execute(
            update(User).where(User.id == found.user_id).values(password_hash=found.new_hash)
        )
    plain = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=found.user_id,
            api_token_id=found.api_token_id,
            token_hash=hash_token(plain),
            csrf_token=secrets.token_urlsafe(32),
            provider=provider,
            created_at=now,
            expires_at=now + ttl_s,
        )
    )
    audit.record(
        session,
        actor=found.user_name,
        action="auth.sign_in",
        object=f"portal:{provider}",
        at=now,
        source=source,
    )
    return plain


def signed_in(session: Session, cookie: str | None, now: float) -> SignedIn:
    if not cookie:
        raise Unauthenticated("not signed in")
    found = session.execute(
        select(WebSession, User, ApiToken)
        .join(User, User.id == WebSession.user_id)
        .outerjoin(ApiToken, ApiToken.id == WebSession.api_token_id)
        .where(WebSession.token_hash == hash_token(cookie))
    ).first()
    if found is None:
        raise Unauthenticated("not signed in")
    row, user, token = found
    if row.revoked_at is not None or row.expires_at <= now:
        raise Unauthenticated("your session has ended; please sign in again")
    if token is not None and (
        token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now)
    ):
        raise Unauthenticated("the API token you signed in with has ended; please sign in again")
    return SignedIn(
        principal_of(session, user), row.id, row.csrf_token, row.provider, bool(user.password_hash)
    )


def close_session(session: Session, cookie: str, *, now: float) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == hash_token(cookie), WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def purge_sessions(session: Session, *, now: float, after_s: float = 86400.0) -> None:
    """Delete sessions ended (expired or signed out) more than `after_s` ago."""
    ended = or_(WebSession.expires_at < now - after_s, WebSession.revoked_at < now - after_s)
    session.execute(delete(WebSession).where(ended))
