"""What people type and read in the accounting commands: dates and GPU-hours.

Dates: YYYY-MM-DD is midnight UTC that day; a full ISO 8601 time is taken as written (without
an offset: UTC, as the API reads it). Both go to the API as ISO 8601. A period's `--to` is
exclusive, as at the API.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def moment(text: str) -> str:
    """YYYY-MM-DD → midnight UTC that day; full ISO 8601 → as written. Returns ISO 8601."""
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"
        ) from None


def when_option(flag: str, help_text: str) -> Any:
    return typer.Option(flag, parser=moment, metavar="DATE", help=help_text)


From = Annotated[str, when_option("--from", "start: YYYY-MM-DD (UTC) or ISO 8601")]
To = Annotated[str, when_option("--to", "end, exclusive: YYYY-MM-DD (UTC) or ISO 8601")]
MaybeFrom = Annotated[str | None, when_option("--from", "start: YYYY-MM-DD (UTC) or ISO 8601")]
MaybeTo = Annotated[str | None, when_option("--to", "end, exclusive: YYYY-MM-DD (UTC) or ISO 8601")]


def hours(value: float) -> str:
    """GPU-hours for reading: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def note(text: str, *, as_json: bool) -> None:
    """A line for people; on stderr when stdout carries JSON."""
    typer.echo(text, err=as_json)
