"""What people type and read: dates, durations, memory, GPU-hours and energy.

Dates: YYYY-MM-DD is midnight UTC that day; a full ISO 8601 time is taken as written (without
an offset: UTC, as the API reads it). Both go to the API as ISO 8601. A period's `--to` is
exclusive, as at the API. Shown back: a boundary (a call's opening, an allocation's validity) as
its UTC day, a moment (a ledger entry, the end of a job) to the minute in local time.

Durations (`--time-limit`, job files) follow one rule, `domain.durations`: a unit is required
(30m, 2h, 1:30:00), a bare number is refused as ambiguous. Memory in job files is written with
a unit too (16G, 512M; G is 1024 MB, as Slurm counts).

Figures keep about three significant digits, so that a four-second job reads 0.001 GPU-h, not 0,
and a large award 12,000 rather than 12000.00. The API's figures stay exact (see --json).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from aifactory.domain.durations import DurationError, seconds

JOULES_PER_KWH = 3.6e6
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MEMORY = re.compile(r"(\d+)\s*(?:([KMGT])(?:i?B)?)?", re.IGNORECASE)
_KB_PER = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}


def parse_duration(text: str) -> int:
    """`--time-limit` → seconds, by the one rule (a unit is required; module docstring)."""
    try:
        return seconds(text)
    except DurationError as exc:
        raise typer.BadParameter(str(exc)) from None


def megabytes(text: str, *, bare: str | None = None) -> int:
    """'16G', '512M', '2048K' → MB (rounded up, as Slurm rounds). A bare number is in the unit
    `bare` (Slurm's --mem: "M"); with none given it is refused as ambiguous. ValueError says why.
    """
    found = _MEMORY.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not an amount of memory: write e.g. 16G or 512M")
    amount, unit = int(found.group(1)), (found.group(2) or bare or "").upper()
    if not unit:
        raise ValueError(f"{amount} is ambiguous: write {amount}M or {amount}G")
    return -(-amount * _KB_PER[unit] // 1024)


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


def hours(value: float, *, signed: bool = False) -> str:
    """GPU-hours for reading: 12,000 and 250 (from 100 up), 42.5, 2.75, 0.002; trailing zeros go.

    An amount too small for three decimals reads <0.001, never 0; zero is 0, never -0. `signed`
    marks a positive amount with + (ledger entries).
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else "+" if signed else ""
    return sign + _figure(abs(value))


def energy(kwh: float) -> str:
    """'12.4 kWh' from 1 kWh up, else in Wh ('338 Wh', '0.338 Wh'); figures as hours() has them."""
    if kwh >= 1:
        return f"{_figure(kwh)} kWh"
    return f"{_figure(kwh * 1000) if kwh else '0'} Wh"


def co2(grams: float) -> str:
    """'1.2 kg CO2' from 1 kg up, else in grams ('91 g CO2', '0.091 g CO2')."""
    if grams >= 1000:
        return f"{_figure(grams / 1000)} kg CO2"
    return f"{_figure(grams) if grams else '0'} g CO2"


def _figure(value: float) -> str:
    """A positive amount to about three significant digits, without trailing zeros."""
    if value >= 100:
        return f"{value:,.0f}"
    places = 1 if value >= 10 else 2 if value >= 1 else 3
    shown = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "<0.001" if shown == "0" else shown


def day(value: str | None) -> str:
    """A boundary from the API (ISO 8601) as its UTC day, YYYY-MM-DD."""
    return "-" if not value else _instant(value).astimezone(UTC).strftime("%Y-%m-%d")


def minute(value: str | None) -> str:
    """A moment from the API (ISO 8601) in local time, to the minute: YYYY-MM-DD HH:MM."""
    return "-" if not value else _instant(value).astimezone().strftime("%Y-%m-%d %H:%M")


def _instant(value: str) -> datetime:
    """ISO 8601, without an offset read as UTC, as the API reads it."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def note(text: str, *, as_json: bool) -> None:
    """A line for people; on stderr when stdout carries JSON."""
    typer.echo(text, err=as_json)
