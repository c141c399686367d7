"""The CLI's sign-in (`aifactory login --sso`): a provider's ID token, issued to the facility's
public CLI client through the device flow, exchanged for a short-lived facility token.

Short-lived on purpose: the CLI gets the next one by refreshing at the provider, so a person
their institution has signed off loses the facility within the hour. An ID token is exchanged
once, and only within `ID_TOKEN_MAX_AGE_S` of its issue: one that leaks is worth nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.federated_identity import Claims
from aifactory.errors import Unauthenticated
from aifactory.governance import audit
from aifactory.services.auth import hash_token, issue_token
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.providers import ProviderConfig
from aifactory.store.models import ApiToken, ExchangedIdToken

CLI_TOKEN_TTL_S = 3600.0
ID_TOKEN_MAX_AGE_S = 3600.0  # the exchange takes ID tokens issued within the last hour
REMEMBERED_S = ID_TOKEN_MAX_AGE_S + 120.0  # and remembers each used one as long (+ leeway)
EXPIRED_KEPT_S = 7 * 86400.0  # ended CLI tokens stay listed a week, then go


@dataclass(frozen=True, slots=True)
class Issued:
    row: ApiToken
    plain: str
    user: str


def issue_cli_token(
    session: Session,
    config: ProviderConfig,
    claims: Claims,
    *,
    id_token: str,
    now: float,
    source: str | None,
) -> Issued | None:
    """A facility token for the person; None while their first sign-in waits for approval
    (the request is written in `session`: commit it, then tell them)."""
    _use_once(session, id_token, now=now)
    user = federated.sign_in(session, config, claims, now=now)
    if user is None:
        return None
    name = f"sso-{config.name}"
    session.execute(
        delete(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.name == name,
            ApiToken.expires_at < now - EXPIRED_KEPT_S,
        )
    )
    row, plain = issue_token(session, user, name=name, now=now, ttl_days=CLI_TOKEN_TTL_S / 86400)
    audit.record(
        session,
        actor=user.name,
        action="auth.sign_in",
        object=f"cli:{config.name}",
        at=now,
        source=source,
    )
    return Issued(row, plain, user.name)


def _use_once(session: Session, id_token: str, *, now: float) -> None:
    session.execute(delete(ExchangedIdToken).where(ExchangedIdToken.expires_at < now))
    try:
        with session.begin_nested():
            session.add(
                ExchangedIdToken(token_hash=hash_token(id_token), expires_at=now + REMEMBERED_S)
            )
    except IntegrityError as exc:
        raise Unauthenticated(
            "this ID token was exchanged already: sign in again", field="id_token"
        ) from exc
