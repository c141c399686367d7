"""Dependencies the routers declare: sessions, the caller, the clock, the app's services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from aifactory.services.auth import authenticate
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


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.aifactory
    return state


StateDep = Annotated[AppState, Depends(app_state)]


def write_session(state: StateDep) -> Iterator[Session]:
    """A write transaction; a handler may leave a hook in `session.info["after_commit"]`."""
    with state.db.session() as session:
        yield session
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


def current_principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    with state.db.read() as session:
        return authenticate(session, token, state.clock())


CurrentUser = Annotated[Principal, Depends(current_principal)]


def now(state: StateDep) -> float:
    return state.clock()


Now = Annotated[float, Depends(now)]
