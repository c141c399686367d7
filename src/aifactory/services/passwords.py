"""Portal passwords: Argon2id (RFC 9106) through argon2-cffi, rehashed on sign-in when the
parameters move on; a wrong user name costs as much time as a wrong password.

A user without a password signs in with an API token only. Admins set a first password;
everyone changes their own (knowing the current one, or right after a token sign-in).

A password (the API's and the portal's form alike come here) is 12 to 256 characters, not one
character repeated, of at least 6 different characters, without the user name, and not a
common password: one on the list shipped beside this module (common_passwords.txt), alone or
with digits and symbols around it ("Password2024!"), compared without regard to case.
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactory.domain.audit import Outcome
from aifactory.domain.permissions import Action
from aifactory.errors import InvalidInput, Unauthenticated
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.tenancy import user_by_name
from aifactory.store.models import User, WebSession

MIN_LENGTH = 12
MAX_LENGTH = 256  # Argon2 hashes any length; a bound keeps a request from costing much
MIN_DISTINCT = 6
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits, symbols and spaces at either end
_hasher = PasswordHasher()  # argon2-cffi's defaults: RFC 9106's low-memory profile
_DUMMY = _hasher.hash("a password no user has: spends the time a real check would")


def check_strength(password: str, *, user_name: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"must be at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"must be at most {MAX_LENGTH} characters", field="password")
    if user_name.lower() in password.lower():
        raise InvalidInput("must not contain the user name", field="password")
    if weakness := weakness_of(password):
        raise InvalidInput(weakness, field="password")


def weakness_of(password: str) -> str | None:
    """Why `password` is too easy to guess, whatever its length; None when it is not."""
    distinct = len(set(password))
    if distinct == 1:
        return "must not be one character repeated"
    if distinct < MIN_DISTINCT:
        return f"must have at least {MIN_DISTINCT} different characters, not {distinct}"
    lowered = password.lower()
    if lowered in common_passwords() or _AROUND.sub("", lowered) in common_passwords():
        return "is a commonly used password: choose one that is not on lists of common passwords"
    return None


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("aifactory.services").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def set_password(session: Session, user: User, password: str, *, actor: str, now: float) -> None:
    check_strength(password, user_name=user.name)
    user.password_hash = _hasher.hash(password)
    audit.record(session, actor=actor, action="user.password", object=f"user:{user.name}", at=now)


def generate_password(user_name: str) -> str:
    """A first password an admin hands over (or `aifactory up` prints): 128 bits, typeable."""
    while True:
        password = "-".join(secrets.token_hex(4) for _ in range(4))
        # hex could spell a short name ("bad", "ace"), or (very rarely) use few digits
        if user_name.lower() not in password and weakness_of(password) is None:
            return password


def verify_password(session: Session, name: str, password: str) -> User:
    """The user these credentials are for, or Unauthenticated with one message for every
    failure (an unknown name is not told apart from a wrong password). Reads only: callers
    check in a read transaction, so the slow hash holds no write lock."""
    user = session.scalars(select(User).where(User.name == name)).first()
    stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _DUMMY, password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        stored = None
    if user is None or stored is None:
        raise Unauthenticated("unknown user name or wrong password", field="password")
    return user


def fresh_hash(stored: str | None, password: str) -> str | None:
    """A new hash of a password just verified, when `stored` used older parameters."""
    if stored is None or not _hasher.check_needs_rehash(stored):
        return None
    return _hasher.hash(password)


def reset_password(session: Session, principal: Principal, user_name: str, *, now: float) -> str:
    """Admins: a new, generated password for `user_name` (shown once); their browsers sign in
    again."""
    principal.authorize(Action.USER_CREATE)
    user = user_by_name(session, user_name)
    password = generate_password(user.name)
    set_password(session, user, password, actor=principal.name, now=now)
    end_sessions(session, user.id, now=now)
    return password


def change_own_password(
    session: Session,
    principal: Principal,
    *,
    current: str | None,
    new: str,
    now: float,
    keep_session: int | None = None,
) -> None:
    """Knowing the current password, if there is one (a token holder may set a first one).
    Their other browser sessions end (all of them when changed through the API)."""
    user = session.get_one(User, principal.user_id)
    if user.password_hash and not still_matches(user, current or ""):
        raise InvalidInput("is not your current password", field="current_password")
    try:
        set_password(session, user, new, actor=user.name, now=now)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="new_password") from None
    end_sessions(session, user.id, now=now, keep=keep_session)


def end_sessions(session: Session, user_id: int, *, now: float, keep: int | None = None) -> None:
    """Every browser of theirs signs in again (but the one that made the change)."""
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    session.execute(query.values(revoked_at=now))


def still_matches(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def record_failed_sign_in(
    session: Session, name: str, *, provider: str, source: str | None, now: float
) -> None:
    audit.record(
        session,
        actor=name[:64] or "unknown",
        action="auth.failed",
        object=f"portal:{provider}",
        at=now,
        source=source,
        outcome=Outcome.DENIED,
        detail={"reason": "portal sign-in refused"},
    )
