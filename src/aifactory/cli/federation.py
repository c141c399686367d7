"""`aifactory federation`: import awards from an upstream allocation portal, export usage to it
(docs/federation.md). The file is sent as it is; the facility checks it, so the CLI and the API
refuse the same records for the same reasons."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, printable, table
from aifactory.cli.units import From, JsonFlag, To, hours, minute, note

app = typer.Typer(
    help="Federation with an upstream allocation portal: award imports in, usage out.",
    no_args_is_help=True,
)


class FileFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class ExportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="federation")


@app.command("import")
def import_awards(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSON or CSV")
    ],
    fmt: Annotated[
        FileFormat | None,
        typer.Option("--format", help="the file's format (default: from its suffix)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would happen, keep nothing")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import FILE's award records: each created, updated, unchanged or refused (with why)."""
    chosen = fmt or _format_of(file)
    content = file.read_text(encoding="utf-8")
    with client(ctx) as api:
        report = api.import_awards(content, fmt=chosen.value, source=file.name, dry_run=dry_run)
    if as_json:
        print_json(report)
        return
    _records_table(report["records"])
    kept = "dry run, nothing kept" if report["dry_run"] else f"import {report['id']}"
    typer.echo(
        f"{kept}: {report['created']} created, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['refused']} refused"
    )


def _format_of(file: Path) -> FileFormat:
    suffix = file.suffix.lower().lstrip(".")
    if suffix not in {f.value for f in FileFormat}:
        raise typer.BadParameter(
            f"cannot tell the format of {file.name}: give --format json or --format csv",
            param_hint="--format",
        )
    return FileFormat(suffix)


def _records_table(records: list[dict[str, Any]]) -> None:
    table(
        None,
        ["#", "award", "outcome", "project", "allocation", "detail"],
        [
            [
                r["index"],
                printable(r["award_id"]),
                r["outcome"],
                r["project"],
                r["allocation"],
                printable(r["detail"]) or None,
            ]
            for r in records
        ],
        last_wraps_to=30,
    )


@app.command("imports")
def list_imports(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The latest imports, newest first: who imported which file, and what it did."""
    with client(ctx) as api:
        found = api.federation_imports()
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "at", "by", "file", "created", "updated", "unchanged", "refused"],
        [
            [
                i["id"],
                minute(i["at"]),
                i["actor"],
                printable(i["source"]),
                i["created"],
                i["updated"],
                i["unchanged"],
                i["refused"],
            ]
            for i in found
        ],
    )


@app.command("export")
def export_usage(
    ctx: typer.Context,
    start: From,
    end: To,
    project: Annotated[str | None, typer.Option(help="only this project's awards")] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="table for people; json or csv for upstream")
    ] = ExportFormat.TABLE,
    out: Annotated[Path | None, typer.Option(dir_okay=False, help="write it here")] = None,
) -> None:
    """Usage of each imported award booked in [--from, --to), per month (admins, finance)."""
    with client(ctx) as api:
        if fmt is ExportFormat.CSV:
            _write(out, api.federation_usage_csv(start=start, end=end, project=project).decode())
            return
        found = api.federation_usage(start=start, end=end, project=project)
    if fmt is ExportFormat.JSON:
        _write(out, json.dumps(found, indent=2, sort_keys=True) + "\n")
    else:
        _usage_table(found)
        totals = found["totals"]
        typer.echo(
            f"total: {hours(totals['gpu_hours'])} GPU-h; cost € {totals['cost']}, "
            f"subsidy € {totals['subsidy']}, net € {totals['net']}"
        )


def _write(out: Path | None, text: str) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    note(f"wrote {out}", as_json=True)


def _usage_table(found: dict[str, Any]) -> None:
    table(
        None,
        ["award", "project", "month", "attempts", "GPU-h", "kWh", "net €"],
        [
            [
                printable(u["award_id"]),
                u["project"],
                u["month"],
                u["attempts"],
                hours(u["gpu_hours"]),
                u["energy_kwh"],
                u["net"],
            ]
            for u in found["usages"]
        ],
    )
