"""Notifications: the events people are told of, by e-mail or a signed webhook. Pure rules.

Words: an *event* is something that happened (a job ended, an allocation reached 80 %); a
*delivery* is one event for one user on one channel, with a stable `delivery_key` that is its
e-mail's Message-ID and its webhook's delivery id, so a receiver can drop a repeat. The outbox
(store.outbox) holds deliveries; the notifier (control.notifier) sends them.

Webhook signature (as Stripe's): header `X-Aifactory-Signature: t=<unix seconds>,v1=<hex>`
where hex = HMAC-SHA256(secret, "<t>." + body). Destinations are sovereign: a webhook may only
go where the operator allowed (`allowed_destination`), and nowhere by default.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class Event(StrEnum):
    JOB_ENDED = "job_ended"
    ALLOCATION_USED = "allocation_used"  # 80 % and 100 % of its GPU-hours
    ALLOCATION_EXPIRED = "allocation_expired"
    PROPOSAL_DECIDED = "proposal_decided"
    ERASURE_COMPLETED = "erasure_completed"
    SESSION_CULLED = "session_culled"
    MAINTENANCE = "maintenance"  # a window announced or called off


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


# Without preferences of their own, people hear of what concerns their projects' money and
# data, by e-mail; every job's end is opt-in (a facility runs thousands a day).
DEFAULT_EVENTS = frozenset(Event) - {Event.JOB_ENDED}
MAX_ATTEMPTS = 10
FIRST_RETRY_S = 30.0
LONGEST_RETRY_S = 3600.0
SIGNATURE_HEADER = "X-Aifactory-Signature"
DELIVERY_HEADER = "X-Aifactory-Delivery"
EVENT_HEADER = "X-Aifactory-Event"


@dataclass(frozen=True, slots=True)
class Notice:
    """What to tell, as written once when the event happens: a subject, a text for people
    and the facts for machines (a webhook's JSON)."""

    event: Event
    key: str  # the event's own unique name, e.g. "job:42:ended"
    subject: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Preferences:
    events: frozenset[Event] = DEFAULT_EVENTS
    email: bool = True
    webhook_url: str | None = None

    def channels_for(self, event: Event, *, has_email: bool, asked: bool = False) -> list[Channel]:
        """`asked`: the person asked for this one event (a job's `notify`), so it goes out on
        their channels even if their events leave it out."""
        if event not in self.events and not asked:
            return []
        found = [Channel.EMAIL] if self.email and has_email else []
        return found + ([Channel.WEBHOOK] if self.webhook_url else [])


def delivery_key(notice_key: str, user_id: int, channel: Channel) -> str:
    return f"{notice_key}/u{user_id}/{channel.value}"


def retry_after_s(attempts: int) -> float:
    """Exponential backoff after the `attempts`-th failed try: 30 s, 1 min, 2 min … 1 h."""
    return min(FIRST_RETRY_S * 2.0 ** max(attempts - 1, 0), LONGEST_RETRY_S)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of `SIGNATURE_HEADER` for this body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_valid(
    secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300
) -> bool:
    """A receiver's check (also in docs/notifications.md): the MAC matches and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or abs(now - int(parts["t"])) > tolerance_s:
        return False
    expected = signature(secret, int(parts["t"]), body).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def destination_problem(url: str, allowed: Sequence[str]) -> str | None:
    """Why a webhook may not go to `url` (None: it may). `allowed` holds host suffixes
    (`hooks.example.org`, `.example.org`) and networks (`10.0.0.0/8`), which match an
    address literal only: a name is never resolved to decide."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "a webhook is an http(s) URL with a host"
    if parts.username or parts.password:
        return "a webhook URL carries no user or password: its secret signs each delivery"
    host = parts.hostname.lower().rstrip(".")
    if not any(_matches(host, entry) for entry in allowed):
        if not allowed:
            return "this facility sends webhooks nowhere (its operator allows no destination)"
        return f"{host} is not among the destinations this facility's operator allows"
    return None


def _matches(host: str, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        suffix = entry.lower().strip(".")
        return bool(suffix) and (host == suffix or host.endswith("." + suffix))
    try:
        return ipaddress.ip_address(host) in network
    except ValueError:
        return False
