"""Each person's notification preferences (which events, by e-mail and/or webhook) and what
was sent to them. The events themselves are queued where they happen (store.outbox).

A webhook secret is made by the facility (256 bits), shown once when made, and kept to sign
each delivery; a webhook URL must be a destination the operator allows.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.notifications import DEFAULT_EVENTS, Event, destination_problem
from aifactory.errors import InvalidInput
from aifactory.services.principal import Principal
from aifactory.store import outbox
from aifactory.store.models import NotificationPreference, OutboxNotification, User

MAX_LISTED = 200


@dataclass(frozen=True, slots=True)
class PreferencesView:
    events: list[str]
    email: bool
    email_address: str | None  # where e-mail goes (the account's); None: none is sent
    webhook_url: str | None
    webhook_secret: str | None = None  # only in the answer that made it


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    event: str
    channel: str
    subject: str
    state: str
    attempts: int
    created_at: float
    sent_at: float | None
    last_error: str | None


def get_preferences(session: Session, principal: Principal) -> PreferencesView:
    prefs = outbox.preferences_of(session, principal.user_id)
    return PreferencesView(
        sorted(e.value for e in prefs.events),
        prefs.email,
        _email_of(session, principal),
        prefs.webhook_url,
    )


def set_preferences(
    session: Session,
    principal: Principal,
    *,
    events: Sequence[str] | None = None,
    email: bool | None = None,
    webhook_url: str | None = None,
    new_webhook_secret: bool = False,
    destinations: Sequence[str] = (),
    now: float,
) -> PreferencesView:
    """Change what is given (None: keep it; webhook_url "": no webhook). A webhook gets a new
    secret when it is first set or when asked for (it is shown in this answer only)."""
    row = session.get(NotificationPreference, principal.user_id) or _defaults(principal, now)
    if events is not None:
        row.events = sorted({_event(e).value for e in events})
    if email is not None:
        row.email = email
    if webhook_url is not None:
        _set_webhook(row, webhook_url.strip(), destinations)
    made = None
    if row.webhook_url and (new_webhook_secret or row.webhook_secret is None):
        made = row.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    if not row.webhook_url:
        row.webhook_secret = None
    row.updated_at = now
    session.add(row)
    outbox.forget_preferences(session)
    view = get_preferences(session, principal)
    return PreferencesView(
        view.events, view.email, view.email_address, view.webhook_url, webhook_secret=made
    )


def list_deliveries(
    session: Session, principal: Principal, *, limit: int = 50
) -> list[DeliveryView]:
    """The caller's own notifications, newest first: what was sent, what waits and why."""
    stmt = (
        select(OutboxNotification)
        .where(OutboxNotification.user_id == principal.user_id)
        .order_by(OutboxNotification.id.desc())
        .limit(max(1, min(limit, MAX_LISTED)))
    )
    return [
        DeliveryView(
            r.id,
            r.event,
            r.channel,
            r.subject,
            r.state,
            r.attempts,
            r.created_at,
            r.sent_at,
            r.last_error,
        )
        for r in session.scalars(stmt)
    ]


def _defaults(principal: Principal, now: float) -> NotificationPreference:
    return NotificationPreference(
        user_id=principal.user_id,
        events=sorted(e.value for e in DEFAULT_EVENTS),
        email=True,
        webhook_url=None,
        webhook_secret=None,
        updated_at=now,
    )


def _event(name: str) -> Event:
    try:
        return Event(name.strip())
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise InvalidInput(
            f"{name!r} is no event; the events are {known}", field="events"
        ) from None


def _set_webhook(row: NotificationPreference, url: str, destinations: Sequence[str]) -> None:
    if not url:
        row.webhook_url = None
        return
    if len(url) > 2048:
        raise InvalidInput("a webhook URL is at most 2048 characters", field="webhook_url")
    problem = destination_problem(url, destinations)
    if problem is not None:
        raise InvalidInput(problem, field="webhook_url")
    if url != row.webhook_url:
        row.webhook_secret = None  # a new destination gets a secret of its own
    row.webhook_url = url


def _email_of(session: Session, principal: Principal) -> str | None:
    user = session.get(User, principal.user_id)
    return user.email if user is not None else None
