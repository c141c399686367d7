"""Signing in to the portal: login providers, and the browser sessions they open.

A provider turns what the person gives into a `User`. Two are built in (user name + password,
and an API token); a federated login (OIDC, as research and education federations use) is a
`RedirectProvider`: the portal sends the browser to the identity provider and, on its way back,
asks the provider which user that was. Whatever the provider, what follows is the same: a
session row, a random cookie token kept only as its SHA-256, a CSRF token for the forms, and
the same `Principal` the API builds from a token, so the permission matrix is the one check.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactory.errors import Unauthenticated
from aifactory.governance import audit
from aifactory.services.auth import authenticate_token, hash_token, principal_of
from aifactory.services.passwords import verify_password
from aifactory.services.principal import Principal
from aifactory.store.models import User, WebSession

SESSION_TTL_S = 12 * 3600  # a working day; then sign in again


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # the <input type>
    autocomplete: str = "off"


class FormProvider(Protocol):
    """Signs in from a form posted to the portal."""

    name: str
    label: str
    fields: tuple[FormField, ...]

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> User: ...


class RedirectProvider(Protocol):
    """Signs in through another site (OIDC): `start` gives the address to send the browser to;
    `finish` gets the query it comes back with. None is built in yet (see docs/portal.md)."""

    name: str
    label: str

    def start(self, *, state: str, return_url: str) -> str: ...

    def finish(self, session: Session, query: Mapping[str, str], now: float) -> User: ...


class PasswordLogin:
    name = "password"
    label = "User name and password"
    fields: tuple[FormField, ...] = (
        FormField("username", "User name", "text", "username"),
        FormField("password", "Password", "password", "current-password"),
    )

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> User:  # noqa: ARG002
        return verify_password(session, form.get("username", "").strip(), form.get("password", ""))


class TokenLogin:
    name = "token"
    label = "API token"
    fields: tuple[FormField, ...] = (FormField("token", "API token", "password", "off"),)

    def verify(self, session: Session, form: Mapping[str, str], now: float) -> User:
        principal = authenticate_token(session, form.get("token", "").strip(), now).principal
        return session.get_one(User, principal.user_id)


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
    user: User,
    *,
    provider: str,
    source: str | None,
    now: float,
    ttl_s: float = SESSION_TTL_S,
) -> str:
    """A new session for `user`; returns the cookie's token (shown once, as API tokens are)."""
    plain = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=hash_token(plain),
            csrf_token=secrets.token_urlsafe(32),
            provider=provider,
            created_at=now,
            expires_at=now + ttl_s,
        )
    )
    audit.record(
        session,
        actor=user.name,
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
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == hash_token(cookie))
    ).first()
    if found is None:
        raise Unauthenticated("not signed in")
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now:
        raise Unauthenticated("your session has ended; please sign in again")
    return SignedIn(
        principal_of(session, user), row.id, row.csrf_token, row.provider, bool(user.password_hash)
    )


def close_session(session: Session, cookie: str, *, now: float) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == hash_token(cookie), WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def close_user_sessions(session: Session, user_id: int, *, now: float, keep: int | None) -> None:
    """After a password change: every other browser of theirs signs in again."""
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    session.execute(query.values(revoked_at=now))
