"""Portal sign-in: Argon2id passwords, sessions that end (expiry, sign-out, password change),
one refusal message for every failure, and the first admin password `aifactory up` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from aifactory.errors import InvalidInput, PermissionDenied, Unauthenticated
from aifactory.server import FIRST_PASSWORD_FILE, first_password
from aifactory.services import passwords
from aifactory.services.auth import hash_token, principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.login import (
    PasswordLogin,
    TokenLogin,
    close_session,
    open_session,
    purge_sessions,
    signed_in,
)
from aifactory.store.db import Database
from aifactory.store.models import ApiToken, AuditEvent, User, WebSession

NOW = 1_800_000_000.0
GOOD = "correct horse battery"


@pytest.fixture
def admin_token(db: Database) -> str:
    with db.session() as session:
        token = bootstrap(session, now=NOW)
        admin = session.scalars(select(User)).one()
        passwords.set_password(session, admin, GOOD, actor="test", now=NOW)
    assert token is not None
    return token


def test_the_password_is_stored_as_argon2id_and_only_the_right_one_signs_in(
    db: Database, admin_token: str
) -> None:
    with db.session() as session:
        stored = session.scalars(select(User.password_hash)).one()
        assert stored is not None
        assert stored.startswith("$argon2id$")
        assert GOOD not in stored
        assert (
            PasswordLogin().verify(session, {"username": "admin", "password": GOOD}, NOW).user_name
            == "admin"
        )
        for name, password in [("admin", "wrong password!"), ("nobody", GOOD), ("", "")]:
            with pytest.raises(Unauthenticated, match=r"^unknown user name or wrong password$"):
                PasswordLogin().verify(session, {"username": name, "password": password}, NOW)


def test_weak_passwords_are_refused_naming_the_field(db: Database, admin_token: str) -> None:
    with db.session() as session:
        admin = session.scalars(select(User)).one()
        for weak, reason in [("short", "at least 12"), ("my-admin-password", "user name")]:
            with pytest.raises(InvalidInput, match=reason) as refused:
                passwords.set_password(session, admin, weak, actor="t", now=NOW)
            assert refused.value.field == "password"


def test_a_session_ends_at_sign_out_at_expiry_and_when_the_password_changes(
    db: Database, admin_token: str
) -> None:
    with db.session() as session:
        admin = TokenLogin().verify(session, {"token": admin_token}, NOW)
        first = open_session(session, admin, provider="token", source="10.0.0.1", now=NOW)
        second = open_session(session, admin, provider="password", source=None, now=NOW, ttl_s=60)
    with db.read() as session:
        found = signed_in(session, first, NOW + 10)
        assert found.principal.name == "admin"
        assert found.provider == "token"
        assert len(found.csrf_token) >= 32
        with pytest.raises(Unauthenticated, match="session has ended"):
            signed_in(session, second, NOW + 61)
        with pytest.raises(Unauthenticated, match="not signed in"):
            signed_in(session, "made-up", NOW)
    with db.session() as session:
        principal = principal_of(session, session.scalars(select(User)).one())
        passwords.change_own_password(
            session, principal, current=GOOD, new="a new long passphrase", now=NOW + 20
        )
    with db.read() as session, pytest.raises(Unauthenticated):
        signed_in(session, first, NOW + 30)
    with db.session() as session:
        third = open_session(session, admin_of(session), provider="token", source=None, now=NOW)
        close_session(session, third, now=NOW + 1)
    with db.read() as session, pytest.raises(Unauthenticated):
        signed_in(session, third, NOW + 2)
    with db.read() as session:
        sign_ins = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in"))
        assert [e.object for e in sign_ins] == ["portal:token", "portal:password", "portal:token"]


def admin_of(session: object) -> User:
    return session.scalars(select(User)).one()  # type: ignore[attr-defined,no-any-return]


def test_changing_ones_password_needs_the_current_one_and_resets_are_for_admins(
    db: Database, admin_token: str
) -> None:
    with db.session() as session:
        admin = principal_of(session, admin_of(session))
        with pytest.raises(InvalidInput) as refused:
            passwords.change_own_password(session, admin, current="guess", new="x" * 20, now=NOW)
        assert refused.value.field == "current_password"
        user = User(name="alice", email=None, facility_role="user", created_at=NOW)
        session.add(user)
        session.flush()
        alice = principal_of(session, user)
        with pytest.raises(PermissionDenied):
            passwords.reset_password(session, alice, "admin", now=NOW)
        issued = passwords.reset_password(session, admin, "alice", now=NOW)
        assert passwords.still_matches(user, issued)
        # a token holder without a password sets a first one without a current one
        bob = User(name="bob", email=None, facility_role="user", created_at=NOW)
        session.add(bob)
        session.flush()
        passwords.change_own_password(
            session, principal_of(session, bob), current=None, new="my own passphrase", now=NOW
        )
        assert passwords.still_matches(bob, "my own passphrase")


def test_the_first_password_is_kept_until_the_admin_changes_it(
    db: Database, tmp_path: Path
) -> None:
    with db.session() as session:
        bootstrap(session, now=NOW)
        made = first_password(session, tmp_path, first_start=True)
    assert made is not None
    path = tmp_path / FIRST_PASSWORD_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    with db.session() as session:
        assert first_password(session, tmp_path, first_start=False) == made  # said again
        admin = admin_of(session)
        passwords.set_password(session, admin, "a choice of my own", actor="admin", now=NOW)
    with db.session() as session:
        assert first_password(session, tmp_path, first_start=False) is None
    assert not path.exists()


def test_a_session_opened_with_a_token_ends_with_the_token(db: Database, admin_token: str) -> None:
    with db.session() as session:
        found = TokenLogin().verify(session, {"token": admin_token}, NOW)
        assert found.api_token_id is not None
        cookie = open_session(session, found, provider="token", source=None, now=NOW)
    with db.read() as session:
        assert signed_in(session, cookie, NOW + 1).principal.name == "admin"
    with db.session() as session:
        token = session.get_one(ApiToken, found.api_token_id)
        token.revoked_at = NOW + 2
    with db.read() as session, pytest.raises(Unauthenticated, match="API token you signed in"):
        signed_in(session, cookie, NOW + 3)


def test_ended_sessions_are_purged_a_day_later(db: Database, admin_token: str) -> None:
    with db.session() as session:
        admin = admin_of(session)
        kept = open_session(session, admin, provider="token", source=None, now=NOW)
        gone = open_session(session, admin, provider="token", source=None, now=NOW, ttl_s=60)
        out = open_session(session, admin, provider="token", source=None, now=NOW)
        close_session(session, out, now=NOW + 10)
    with db.session() as session:
        purge_sessions(session, now=NOW + 60 + 86400 + 1)
    with db.read() as session:
        left = set(session.scalars(select(WebSession.token_hash)))
    assert left == {hash_token(kept)}
    assert hash_token(gone) not in left
