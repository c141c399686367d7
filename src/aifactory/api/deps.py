"""Dependencies the routers declare: sessions, the caller, the clock, the app's services.

The state and the sessions are both faces' (`faces.state`); the caller by bearer token is the
API's own."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aifactory.errors import Unauthenticated
from aifactory.faces.state import AppState as AppState
from aifactory.faces.state import ReadSession as ReadSession
from aifactory.faces.state import StateDep as StateDep
from aifactory.faces.state import WriteSession as WriteSession
from aifactory.services.auth import Authenticated, authenticate_token, hash_token, record_failure
from aifactory.services.principal import Principal

_bearer = HTTPBearer(auto_error=False, description="an API token: 'Bearer afy_...'")


async def current_principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """From the cache when it is fresh; else one read transaction, off the event loop. The
    principal carries this request's client address.

    A token refused is audited by the error handler (`on_error`), once this request's own
    session, which may hold the SQLite writer lock, has ended. No token at all is no attempt
    to sign in, and is not audited."""
    token = credentials.credentials if credentials else None
    now = state.clock()
    source = request.client.host if request.client else None
    if token:
        cached = state.principals.get(hash_token(token), now)
        if cached is not None:
            return replace(cached, source=source)
    try:
        found = await run_in_threadpool(_authenticate, state, token, now)
    except Unauthenticated as exc:
        if token:
            request.state.on_error = partial(_audit_refusal, state, token, exc, source, now)
        raise
    state.principals.put(found.token_hash, found.principal, found.expires_at, now)
    return replace(found.principal, source=source)


def _authenticate(state: AppState, token: str | None, now: float) -> Authenticated:
    with state.db.read() as session:
        return authenticate_token(session, token, now)


def _audit_refusal(
    state: AppState, token: str, exc: Unauthenticated, source: str | None, now: float
) -> None:
    with state.db.session() as session:
        record_failure(session, token, reason=exc.message, source=source, now=now)


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def now(state: StateDep) -> float:
    return state.clock()


Now = Annotated[float, Depends(now)]


async def one_value_each(request: Request) -> None:
    """Every route's: a query parameter given twice is refused, where FastAPI would quietly take
    the last one (no parameter of this API is a list)."""
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key in seen:
            error = {"type": "repeated", "loc": ("query", key), "msg": "is given more than once"}
            raise RequestValidationError([error])
        seen.add(key)
