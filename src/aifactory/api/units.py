"""How the API reads and writes moments and money: ISO 8601 (a moment without an offset is
UTC) to and from the store's UNIX seconds, and euros as text with two decimals.

A moment given to the API (a query parameter or a body field) is an ISO 8601 date-time or a
date (its midnight, UTC), never a bare number: "0.5" or "20260101" would otherwise be read as
UNIX seconds, silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from aifactory.domain.money import euros

MOMENT_FORMAT = "ISO 8601 date-time or date, e.g. 2026-01-31T12:00:00Z or 2026-01-31"


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        raise ValueError(f"must be an {MOMENT_FORMAT}, not a number")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


Moment = Annotated[
    datetime,
    BeforeValidator(_not_a_number),
    Field(strict=False),  # lax: a date alone is its midnight
    AfterValidator(as_utc),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ],
            "description": f"{MOMENT_FORMAT}; without an offset it is read as UTC",
        }
    ),
]


def unix(moment: datetime) -> float:
    return as_utc(moment).timestamp()


def moment_at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def money(amount_cents: int) -> str:
    return str(euros(amount_cents))
