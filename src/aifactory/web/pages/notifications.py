"""Your notifications in the portal: which events you hear of, by e-mail and/or webhook, and
what was sent to you (services.notifications; the same as `aifactory notifications`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from aifactory.domain.notifications import Event
from aifactory.errors import AifactoryError
from aifactory.faces.state import AppState, StateDep
from aifactory.services import notifications
from aifactory.services.login import SignedIn
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
LISTED = 20
YES = "yes"  # a ticked box's value
# What each event is, for people (docs/notifications.md has who hears of each).
EVENTS = {
    Event.JOB_ENDED: "every one of my jobs ends (or ask for one job: submit --notify)",
    Event.ALLOCATION_USED: "an allocation of a project I own reaches 80 % and 100 %",
    Event.ALLOCATION_EXPIRED: "an allocation of a project I own expires",
    Event.PROPOSAL_DECIDED: "a proposal of mine or of a project I own is decided",
    Event.ERASURE_COMPLETED: "an erasure I asked for, or of my projects' data, is done",
    Event.SESSION_CULLED: "an interactive session of mine is stopped for being idle",
    Event.MAINTENANCE: "maintenance is announced or called off while I have work here",
}


@router.get("/account/notifications")
def notifications_page(request: Request, signed: Signed, state: StateDep) -> Response:
    return _page(request, signed, state)


@router.post("/account/notifications")
def save_preferences(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    events: Annotated[list[str] | None, Form()] = None,
    email: Annotated[str, Form()] = "",
    webhook_url: Annotated[str, Form()] = "",
    renew: Annotated[str, Form(alias="new_secret")] = "",
) -> Response:
    try:
        with state.db.session() as session:
            saved = notifications.set_preferences(
                session,
                signed.principal,
                events=events or [],
                email=email == YES,
                webhook_url=webhook_url,
                new_webhook_secret=renew == YES,
                destinations=state.webhook_destinations,
                now=state.clock(),
            )
    except AifactoryError as exc:
        errors = {exc.field or "events": exc.message}
        return _page(request, signed, state, status=422, errors=errors, typed=webhook_url)
    return _page(request, signed, state, saved=True, secret=saved.webhook_secret)


def _page(
    request: Request,
    signed: SignedIn,
    state: AppState,
    *,
    status: int = 200,
    **context: object,
) -> Response:
    with state.db.read() as session:
        prefs = notifications.get_preferences(session, signed.principal)
        sent = notifications.list_deliveries(session, signed.principal, limit=LISTED)
    return render(
        request,
        "account_notifications.html",
        signed,
        status_code=status,
        title="Your notifications",
        prefs=prefs,
        events=[(event.value, text) for event, text in EVENTS.items()],
        sent=sent,
        **context,
    )
