"""The CLI's sign-in (`aifactory login --sso`): a provider's ID token, issued to the facility's
public CLI client through the device flow, exchanged for a short-lived facility token.

Short-lived on purpose: the CLI gets the next one by refreshing at the provider, so a person
their institution has signed off loses the facility within the hour. The exchange takes only
ID tokens issued in the last `ID_TOKEN_MAX_AGE_S` (the CLI exchanges one at once), so one that
leaks is soon worth nothing. Not "each once": a provider may issue byte-identical ID tokens for
two refreshes in one second (same claims, same `iat`, a deterministic signature), which a
once-only rule would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from aifactory.domain.federated_identity import Claims
from aifactory.governance import audit
from aifactory.services.auth import issue_token
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.providers import ProviderConfig
from aifactory.store.models import ApiToken

CLI_TOKEN_TTL_S = 3600.0
ID_TOKEN_MAX_AGE_S = 600.0  # the exchange takes ID tokens issued within the last 10 minutes
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
    now: float,
    source: str | None,
) -> Issued | None:
    """A facility token for the person; None while their first sign-in waits for approval
    (the request is written in `session`: commit it, then tell them)."""
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
