"""API tokens: issued once in plain text, stored as SHA-256, expiring and revocable.

Everyone lists, issues and revokes their own tokens; another user's only with TOKEN_MANAGE
(admins). A token that is not yours and not yours to manage does not exist for you (404).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.audit import Outcome
from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import InvalidInput, NotFound, Unauthenticated
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.records_of import TokenRecord, copy_of
from aifactory.services.tenancy import user_by_name
from aifactory.store.models import ApiToken, Member, User

TOKEN_PREFIX = "afy_"  # noqa: S105 - a public prefix, not a secret
# A token's life: long enough to be used once issued (a shorter one would be expired on
# arrival), at most ten years.
MIN_TTL_DAYS = 1 / 1440  # one minute
MAX_TTL_DAYS = 3650


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, *, name: str, now: float, ttl_days: float | None = None
) -> tuple[ApiToken, str]:
    if ttl_days is not None and not MIN_TTL_DAYS <= ttl_days <= MAX_TTL_DAYS:
        raise InvalidInput(
            f"must be at least one minute (1/1440 of a day) and at most {MAX_TTL_DAYS} days",
            field="ttl_days",
        )
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(plain),
        prefix=plain[: len(TOKEN_PREFIX) + 6],
        created_at=now,
        expires_at=None if ttl_days is None else now + ttl_days * 86400,
    )
    session.add(row)
    session.flush()
    return row, plain


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    token_hash: str
    expires_at: float | None


def authenticate(session: Session, token: str | None, now: float) -> Principal:
    return authenticate_token(session, token, now).principal


def authenticate_token(session: Session, token: str | None, now: float) -> Authenticated:
    if not token:
        raise Unauthenticated("missing API token: send the header 'Authorization: Bearer <token>'")
    token_hash = hash_token(token)
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash)
    ).first()
    if found is None:
        raise Unauthenticated("invalid API token")
    row, user = found
    if row.revoked_at is not None:
        raise Unauthenticated("this API token was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        when = datetime.fromtimestamp(row.expires_at, UTC).isoformat(timespec="seconds")
        raise Unauthenticated(f"this API token expired at {when}")
    return Authenticated(principal_of(session, user), token_hash, row.expires_at)


def record_failure(
    session: Session, token: str, *, reason: str, source: str | None, now: float
) -> None:
    """Audit a refused token (in its own transaction: the request itself fails). The actor is
    the token's owner when the token is known (revoked, expired), else "unknown"."""
    found = session.execute(
        select(ApiToken.id, User.name)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    actor, what = (found[1], f"token:{found[0]}") if found else ("unknown", "token:?")
    audit.record(
        session,
        actor=actor,
        action="auth.failed",
        object=what,
        at=now,
        source=source,
        outcome=Outcome.DENIED,
        detail={"reason": reason, "prefix": token[: len(TOKEN_PREFIX) + 6]},
    )


def principal_of(session: Session, user: User) -> Principal:
    members = session.execute(
        select(Member.project_id, Member.role).where(Member.user_id == user.id)
    ).all()
    return Principal(
        user_id=user.id,
        name=user.name,
        facility_role=FacilityRole(user.facility_role),
        memberships={pid: ProjectRole(role) for pid, role in members},
        default_project_id=user.default_project_id,
    )


def list_tokens(
    session: Session, principal: Principal, *, user_name: str | None = None
) -> list[TokenRecord]:
    user_id = _token_owner(session, principal, user_name)
    stmt = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return [copy_of(TokenRecord, row) for row in session.scalars(stmt)]


def create_token(
    session: Session,
    principal: Principal,
    *,
    name: str,
    now: float,
    ttl_days: float | None = None,
    user_name: str | None = None,
) -> tuple[TokenRecord, str]:
    user = session.get(User, _token_owner(session, principal, user_name))
    assert user is not None
    row, plain = issue_token(session, user, name=name, now=now, ttl_days=ttl_days)
    _audit(session, principal, "token.create", row, now, {"name": name, "user": user.name})
    return copy_of(TokenRecord, row), plain


def revoke_token(
    session: Session, principal: Principal, token_id: int, *, now: float
) -> TokenRecord:
    row = session.get(ApiToken, token_id)
    if row is None or not (row.user_id == principal.user_id or principal.may(Action.TOKEN_MANAGE)):
        raise NotFound("token not found", field="token_id")
    if row.revoked_at is None:
        row.revoked_at = now
        _audit(session, principal, "token.revoke", row, now, {"name": row.name})
    return copy_of(TokenRecord, row)


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    token: ApiToken,
    now: float,
    detail: dict[str, str],
) -> None:
    audit.record(
        session,
        actor=principal.name,
        action=action,
        object=f"token:{token.id}",
        at=now,
        source=principal.source,
        detail=detail,
    )


def _token_owner(session: Session, principal: Principal, user_name: str | None) -> int:
    """Users manage their own tokens; TOKEN_MANAGE (admins) anyone's."""
    if user_name is None or user_name == principal.name:
        return principal.user_id
    principal.authorize(Action.TOKEN_MANAGE)
    return user_by_name(session, user_name).id
