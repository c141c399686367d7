"""The CLI's sign-in (`aifactory login --sso`): a provider's ID token, issued to the facility's
public CLI client through the device flow, exchanged for a short-lived facility token.

Short-lived on purpose: the CLI gets the next one by refreshing at the provider, so a person
their institution has signed off loses the facility within the hour.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from aifactory.domain.federated_identity import Claims
from aifactory.errors import PermissionDenied
from aifactory.governance import audit
from aifactory.services.auth import issue_token
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.providers import ProviderConfig
from aifactory.store.models import ApiToken

CLI_TOKEN_TTL_S = 3600.0
EXPIRED_KEPT_S = 7 * 86400.0  # ended CLI tokens stay listed a week, then go


@dataclass(frozen=True, slots=True)
class Issued:
    row: ApiToken
    plain: str
    user: str


def issue_cli_token(
    session: Session, config: ProviderConfig, claims: Claims, *, now: float, source: str | None
) -> Issued:
    user = federated.sign_in(session, config, claims, now=now)
    if user is None:
        raise PermissionDenied(
            "your first sign-in waits for the facility's administrators to approve it",
            field="id_token",
        )
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
