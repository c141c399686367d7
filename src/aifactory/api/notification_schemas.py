"""Request and response schemas of the notification routes (services.notifications)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from aifactory.api.schemas import Request, Response
from aifactory.domain.notifications import Event
from aifactory.services.notifications import DeliveryView, PreferencesView

EVENTS = ", ".join(e.value for e in Event)


class PreferencesIn(Request):
    """What to change; what is left out stays as it is."""

    events: list[str] | None = Field(
        None, max_length=len(Event), description=f"the events to hear of, from: {EVENTS}"
    )
    email: bool | None = Field(None, description="by e-mail, to the account's address")
    webhook_url: str | None = Field(
        None, max_length=2048, description="a signed webhook (an allowed destination); '': none"
    )
    new_webhook_secret: bool = Field(False, description="make a new signing secret (shown once)")


class PreferencesOut(Response):
    events: list[str]
    email: bool
    email_address: str | None
    webhook_url: str | None
    webhook_secret: str | None = Field(
        None, description="only in the answer that made it: keep it to verify signatures"
    )

    @classmethod
    def of(cls, view: PreferencesView) -> PreferencesOut:
        return cls(
            events=view.events,
            email=view.email,
            email_address=view.email_address,
            webhook_url=view.webhook_url,
            webhook_secret=view.webhook_secret,
        )


class DeliveryOut(Response):
    id: int
    event: str
    channel: str
    subject: str
    state: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, view: DeliveryView) -> DeliveryOut:
        return cls(
            id=view.id,
            event=view.event,
            channel=view.channel,
            subject=view.subject,
            state=view.state,
            attempts=view.attempts,
            created_at=datetime.fromtimestamp(view.created_at, UTC),
            sent_at=None if view.sent_at is None else datetime.fromtimestamp(view.sent_at, UTC),
            last_error=view.last_error,
        )
