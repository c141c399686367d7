"""Parsing what people type (KEY=VALUE; durations: cli.units) and showing what the API returns."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE")
        env[key] = value
    return env


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text a job or a user chose (names, reasons, commands), safe for a terminal: control
    characters (escape sequences that could retitle it, write the clipboard, hide lines) are
    shown as \\x.. rather than acted on."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    spare: Sequence[str] = (),
    last_wraps_to: int = 0,
) -> None:
    """Rows under their headings, None as "-". The first column names the row: never cut short.

    With `spare` or `last_wraps_to` the table is fitted to the console, since Rich's own way out
    of a narrow one cuts every cell short: the `spare` columns (headings, least needed first)
    are left out while the others, the last one wrapped to `last_wraps_to` characters, would not
    fit; and a column of one-word cells (dates, figures) never wraps, unless the console is too
    narrow even for that. Scripts read every field from --json.
    """
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    fitted = False
    if spare or last_wraps_to:
        kept, fitted = _fit(columns, cells, spare, last_wraps_to)
        columns = [columns[i] for i in kept]
        cells = [[row[i] for i in kept] for row in cells]
    view = Table(title=title, show_lines=False)
    widest = max((cell_len(row[0]) for row in cells if row), default=0)
    for position, column in enumerate(columns):
        if position == 0:
            view.add_column(column, no_wrap=True, min_width=max(widest, cell_len(column)))
        elif fitted:
            words = all(" " not in row[position] for row in cells)
            view.add_column(column, no_wrap=words, overflow="fold")
        else:
            view.add_column(column)
    for row in cells:
        view.add_row(*(Text(printable(cell)) for cell in row))  # no markup, no control codes
    console.print(view)


def _fit(
    columns: Sequence[str], cells: list[list[str]], spare: Sequence[str], last_wraps_to: int
) -> tuple[list[int], bool]:
    """The positions of the columns to show, all but as many `spare` ones as the console needs;
    and whether those fit with only the columns of many-word cells wrapped, at most to a word."""
    full = [_width([heading, *(row[i] for row in cells)]) for i, heading in enumerate(columns)]
    kept = list(range(len(columns)))
    for heading in spare:
        *fixed, last = (full[i] for i in kept)
        if _frame(kept) + sum(fixed) + min(last, last_wraps_to or last) <= console.width:
            break
        kept.remove(columns.index(heading))
    least = [
        _width([heading, *(w for row in cells for w in row[i].split())])
        for i, heading in enumerate(columns)
    ]
    return kept, _frame(kept) + sum(least[i] for i in kept) <= console.width


def _frame(kept: Sequence[int]) -> int:
    """The width a table's rules and padding take: a rule and a space either side of each cell."""
    return 3 * len(kept) + 1


def _width(texts: Sequence[str]) -> int:
    """The widest line of these texts, in terminal cells."""
    return max((cell_len(line) for text in texts for line in text.splitlines()), default=0)
