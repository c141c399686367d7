"""Federated sign-in over the API: which providers there are, the CLI's exchange of a
provider's ID token for a short-lived facility token, and admins' approvals of first sign-ins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.schemas import MAX_ID, TokenOut
from aifactory.api.sign_in_schemas import (
    ProviderOut,
    SignInRequestOut,
    SsoExchange,
    SsoTokenIssued,
)
from aifactory.errors import NotFound, PermissionDenied, Unauthenticated
from aifactory.faces.state import AppState
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.cli_tokens import ID_TOKEN_MAX_AGE_S, issue_cli_token
from aifactory.services.federated.sign_in import RequestView

router = APIRouter(tags=["sign-in"])


@router.get("/auth/providers", response_model=list[ProviderOut])
def providers(state: StateDep) -> list[ProviderOut]:
    """The identity providers this facility trusts (no token needed: the CLI asks first)."""
    return [
        ProviderOut(
            name=c.name,
            label=c.label,
            issuer=c.config.issuer,
            cli_client_id=c.config.cli_client_id,
            scopes=c.config.scopes,
        )
        for c in state.sign_in.values()
    ]


@router.post("/auth/sso/token", status_code=201, response_model=SsoTokenIssued)
async def exchange(body: SsoExchange, request: Request, state: StateDep) -> SsoTokenIssued:
    """A facility token for the person an ID token names (`aifactory login --sso`): the token
    must come from the provider, for its CLI client, unexpired. The facility token lives an hour
    at most; the CLI refreshes it at the provider, so an institution's revocation holds."""
    source = request.client.host if request.client else None
    return await run_in_threadpool(_exchange, state, body, source)


def _exchange(state: AppState, body: SsoExchange, source: str | None) -> SsoTokenIssued:
    client = state.sign_in.get(body.provider)
    if client is None:
        raise NotFound(f"no sign-in provider named {body.provider!r}", field="provider")
    if client.config.cli_client_id is None:
        raise Unauthenticated(
            f"{client.label} is for the portal only: sign in there", field="provider"
        )
    claims = client.claims(
        body.id_token,
        audience=client.config.cli_client_id,
        nonce=None,
        now=state.clock(),
        max_age_s=ID_TOKEN_MAX_AGE_S,
    )
    with state.db.session() as session:
        issued = issue_cli_token(session, client.config, claims, now=state.clock(), source=source)
    if issued is None:  # the request for approval is committed: now say so
        raise PermissionDenied(
            "your first sign-in waits for the facility's administrators to approve it",
            field="id_token",
        )
    out = TokenOut.of(issued.row).model_dump()
    return SsoTokenIssued(**out, token=issued.plain, user=issued.user)


@router.get("/sign-in-requests", response_model=list[SignInRequestOut])
def list_requests(session: ReadSession, user: CurrentUser) -> list[SignInRequestOut]:
    """First sign-ins waiting for approval (providers configured with approval = "admin")."""
    return [_out(r) for r in federated.list_requests(session, user)]


@router.post("/sign-in-requests/{request_id}/{decision}", response_model=SignInRequestOut)
def decide(
    request_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    decision: Literal["approve", "reject"],
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> SignInRequestOut:
    """Admins: let a waiting person in (their account is made now), or turn them down."""
    configs = {name: c.config for name, c in state.sign_in.items()}
    approve = decision == "approve"
    return _out(federated.decide(session, user, configs, request_id, approve=approve, now=now))


def _out(view: RequestView) -> SignInRequestOut:
    return SignInRequestOut(
        id=view.id,
        provider=view.provider,
        subject=view.subject,
        name=view.name,
        email=view.email,
        home_organisation=view.home_organisation,
        requested_at=datetime.fromtimestamp(view.requested_at, UTC),
        outcome=view.outcome,
    )
