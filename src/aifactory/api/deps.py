"""Dependencies the routers declare: sessions, the caller, the clock, the app's services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from aifactory.api.group_commit import GroupCommitter
from aifactory.api.principal_cache import PrincipalCache
from aifactory.errors import Unauthenticated
from aifactory.scheduler import Policy
from aifactory.services.auth import Authenticated, authenticate_token, hash_token, record_failure
from aifactory.services.jobs import LogLocator
from aifactory.services.principal import Principal
from aifactory.store.db import Database


@dataclass
class AppState:
    """What `create_app` wires in; routers reach it only through the aliases below."""

    db: Database
    clock: Callable[[], float]
    locate_log: LogLocator
    on_submit: Callable[[], None]
    ready: Callable[[], bool]
    policy: Policy = field(default_factory=Policy)  # the control loop's: explanations use it
    vat_pct: int = 21  # config.Settings.vat_pct: VAT on the invoices issued
    grid_g_per_kwh: float = 270.0  # config.Settings.grid_g_per_kwh: CO2 in usage and reports
    auth_cache_s: float = 2.0
    # config.Settings.datasets_dir / jobs_dir: where datasets lie (none may be outside) and
    # where jobs' directories are (exports and erasures reach them). None: no data facility.
    data_root: Path | None = None
    jobs_dir: Path | None = None
    principals: PrincipalCache = field(init=False)
    committer: GroupCommitter = field(init=False)

    def __post_init__(self) -> None:
        self.principals = PrincipalCache(ttl_s=self.auth_cache_s)
        self.committer = GroupCommitter(self.db, self.clock, self.on_submit)


async def app_state(request: Request) -> AppState:
    """async: a plain `def` dependency costs a thread-pool round trip on every request."""
    state: AppState = request.app.state.aifactory
    return state


StateDep = Annotated[AppState, Depends(app_state)]


def write_session(state: StateDep) -> Iterator[Session]:
    """A write transaction; a handler may leave a hook in `session.info["after_commit"]`."""
    with state.db.session() as session:
        yield session
    state.principals.clear()  # tokens, members or users may have changed
    hook = session.info.get("after_commit")
    if hook is not None:
        hook()


def read_session(state: StateDep) -> Iterator[Session]:
    with state.db.read() as session:
        yield session


# scope="function": commit before the response goes out, so a 201 means it is stored.
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
ReadSession = Annotated[Session, Depends(read_session, scope="function")]

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
