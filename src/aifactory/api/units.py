"""How the API reads and writes moments and money: ISO 8601 (a moment without an offset is
UTC) to and from the store's UNIX seconds, and euros as text with two decimals."""

from __future__ import annotations

from datetime import UTC, datetime

from aifactory.domain.money import euros


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def unix(moment: datetime) -> float:
    return as_utc(moment).timestamp()


def moment_at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def money(amount_cents: int) -> str:
    return str(euros(amount_cents))
