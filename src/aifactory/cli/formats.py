"""Parsing what people type (durations, KEY=VALUE) and showing what the API returns."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_duration(text: str) -> int:
    """'90' (seconds), '30m', '2h', '1d', or '[d-]hh:mm:ss' as Slurm writes it → seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if match:
        return int(match.group(1)) * _UNITS[match.group(2)]
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if (
        (days and not days.isdigit())
        or not 2 <= len(parts) <= 3
        or not all(p.isdigit() for p in parts)
    ):
        raise typer.BadParameter(f"{text!r} is not a duration (try 90, 30m, 2h or 1:30:00)")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    if len(parts) == 2:
        seconds *= 60  # hh:mm
    return seconds + int(days or 0) * 86400


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE")
        env[key] = value
    return env


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, show_lines=False)
    # The first column names the row: never cut it short, squeeze the figures instead.
    widest = max((len(str(row[0])) for row in rows if row), default=0)
    for position, column in enumerate(columns):
        if position == 0:
            view.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
        else:
            view.add_column(column)
    for row in rows:
        view.add_row(*("-" if v is None else str(v) for v in row))
    console.print(view)
