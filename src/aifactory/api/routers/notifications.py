"""The caller's notifications: their preferences and what was sent to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.notification_schemas import DeliveryOut, PreferencesIn, PreferencesOut
from aifactory.services import notifications

router = APIRouter(prefix="/me/notifications", tags=["notifications"])


@router.get("/preferences", response_model=PreferencesOut)
def get_preferences(session: ReadSession, user: CurrentUser) -> PreferencesOut:
    return PreferencesOut.of(notifications.get_preferences(session, user))


@router.put("/preferences", response_model=PreferencesOut)
def set_preferences(
    body: PreferencesIn, session: WriteSession, user: CurrentUser, now: Now, state: StateDep
) -> PreferencesOut:
    """Change what you hear of and how; a new webhook secret is in this answer only."""
    view = notifications.set_preferences(
        session,
        user,
        events=body.events,
        email=body.email,
        webhook_url=body.webhook_url,
        new_webhook_secret=body.new_webhook_secret,
        destinations=state.webhook_destinations,
        now=now,
    )
    return PreferencesOut.of(view)


@router.get("", response_model=list[DeliveryOut])
def list_deliveries(
    session: ReadSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=notifications.MAX_LISTED)] = 50,
) -> list[DeliveryOut]:
    """Your notifications, newest first: sent, waiting (with the last error) or given up."""
    return [DeliveryOut.of(d) for d in notifications.list_deliveries(session, user, limit=limit)]
