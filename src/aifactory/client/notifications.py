"""The SDK's notification calls. `Client` mixes them in; they use its plumbing (`_call`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class NotificationCalls(Plumbing):
    def notification_preferences(self) -> Json:
        result: Json = self._call("GET", "/me/notifications/preferences")
        return result

    def set_notification_preferences(
        self,
        *,
        events: Sequence[str] | None = None,
        email: bool | None = None,
        webhook_url: str | None = None,
        new_webhook_secret: bool = False,
    ) -> Json:
        """Change what is given; `webhook_url=""` removes the webhook. A new secret is in
        the answer (`webhook_secret`) only."""
        body: Json = {"new_webhook_secret": new_webhook_secret}
        if events is not None:
            body["events"] = list(events)
        if email is not None:
            body["email"] = email
        if webhook_url is not None:
            body["webhook_url"] = webhook_url
        result: Json = self._call("PUT", "/me/notifications/preferences", json=body)
        return result

    def notifications(self, *, limit: int = 50) -> list[Json]:
        """Your notifications, newest first, with their state (pending, sent, failed)."""
        result: list[Json] = self._call("GET", "/me/notifications", params={"limit": limit})
        return result
