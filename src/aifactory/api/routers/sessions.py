"""Interactive sessions: start, list, show, stop, and a link that opens one in a browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.schemas import MAX_ID
from aifactory.api.session_schemas import SessionOpened, SessionOut
from aifactory.domain import interactive
from aifactory.faces.inputs import Name, SessionStart
from aifactory.services import interactive as sessions
from aifactory.services.auth import hash_token

router = APIRouter(tags=["sessions"])
SessionId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/sessions", status_code=201, response_model=SessionOut)
def start_session(
    body: SessionStart,
    session: WriteSession,
    state: StateDep,
    user: CurrentUser,
    now: Now,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
) -> SessionOut:
    """JupyterLab as a job of the project: queued, scheduled and billed as any job."""
    view = sessions.start_session(
        session,
        user,
        body.spec(),
        now=now,
        idempotency_key=idempotency_key,
        python=state.session_python,
    )
    session.info["after_commit"] = state.on_submit
    return SessionOut.of(view, now)


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(
    session: ReadSession,
    user: CurrentUser,
    now: Now,
    project: Annotated[Name | None, Query()] = None,
) -> list[SessionOut]:
    return [
        SessionOut.of(v, now)
        for v in sessions.list_sessions(session, user, now=now, project=project)
    ]


@router.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(
    session_id: SessionId, session: ReadSession, user: CurrentUser, now: Now
) -> SessionOut:
    return SessionOut.of(sessions.show_session(session, user, session_id, now=now), now)


@router.delete("/sessions/{session_id}", response_model=SessionOut)
def stop_session(
    session_id: SessionId, session: WriteSession, state: StateDep, user: CurrentUser, now: Now
) -> SessionOut:
    """Stop it as a job is cancelled: SIGTERM, then its grace; its GPUs go back."""
    stopped = sessions.stop_session(session, user, session_id, now=now)
    session.info["after_commit"] = state.on_submit  # the loop stops it now, not next tick
    return SessionOut.of(stopped, now)


@router.post("/sessions/{session_id}/open", response_model=SessionOpened)
def open_session(
    session_id: SessionId,
    request: Request,
    session: WriteSession,
    state: StateDep,
    user: CurrentUser,
    now: Now,
) -> SessionOpened:
    """A one-use link into the session's own origin (s<ID>.<sessions domain>), for a
    browser: it ends with the API token that asked for it."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    ticket = sessions.open_ticket(
        session, user, session_id, now=now, api_token_hash=hash_token(token) if token else None
    )
    url = interactive.enter_url(
        session_id,
        ticket,
        domain=state.sessions_domain,
        scheme=request.url.scheme,
        port=request.url.port,
    )
    return SessionOpened(url=url)
