"""`aifactory maintenance`: windows when nodes are out of service, announced to users;
`create` and `cancel` (operators)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag, moment

maintenance_app = typer.Typer(
    help="Maintenance windows: nothing starts on their nodes that would run into one.",
    invoke_without_command=True,
)
_RELATIVE = re.compile(r"\+(\d+)([mhd])")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}
WHEN = "now, +30m / +2h / +3d, YYYY-MM-DD (UTC) or ISO 8601 (UTC without an offset)"


def when(text: str) -> str:
    """`now` and `+2h` from this moment; otherwise a date or ISO 8601 time (cli.units)."""
    text = text.strip()
    if text == "now":
        return datetime.now(UTC).isoformat()
    found = _RELATIVE.fullmatch(text)
    if found:
        try:
            step = timedelta(**{_UNIT[found.group(2)]: int(found.group(1))})
            return (datetime.now(UTC) + step).isoformat()
        except OverflowError:
            raise typer.BadParameter(f"{text!r} is too far ahead") from None
    return moment(text)


def register(app: typer.Typer) -> None:
    app.add_typer(maintenance_app, name="maintenance")


@maintenance_app.callback()
def show(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="also those over or cancelled")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Windows not over yet, soonest first."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.maintenance(everything=everything)
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("no maintenance planned")
        return
    table(
        "maintenance",
        ["id", "nodes", "from", "to", "state", "by", "reason"],
        [
            [
                w["id"],
                nodes_text(w),
                _moment(w["begins_at"]),
                _moment(w["ends_at"]),
                w["state"],
                w["created_by"],
                w["reason"],
            ]
            for w in found
        ],
        spare=["by"],
        last_wraps_to=40,
    )


@maintenance_app.command()
def create(
    ctx: typer.Context,
    begins: Annotated[str, typer.Option("--from", parser=when, metavar="WHEN", help=WHEN)],
    ends: Annotated[str, typer.Option("--to", parser=when, metavar="WHEN", help=WHEN)],
    reason: Annotated[str, typer.Option(help="why: shown to everyone with the window")],
    nodes: Annotated[
        str | None, typer.Option(help="comma-separated node ids (default: every node)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Announce a window: users with work here are notified, and no job starts on its nodes
    that would run into it by its time limit (shorter ones are backfilled up to it)."""
    chosen = [n.strip() for n in nodes.split(",") if n.strip()] if nodes is not None else None
    with client(ctx) as api:
        found = api.create_maintenance(nodes=chosen, begins_at=begins, ends_at=ends, reason=reason)
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"maintenance {found['id']}: {nodes_text(found)} from {_moment(found['begins_at'])} "
        f"to {_moment(found['ends_at'])}; {found['notified']} notification(s) queued"
    )
    for job in found["affected"]:
        typer.echo(
            f"  job {job['job_id']} on {', '.join(job['nodes'])} may run until "
            f"{_moment(job['limit_ends_at'])}, into the window: it is not stopped"
        )


@maintenance_app.command()
def cancel(
    ctx: typer.Context,
    window: Annotated[int, typer.Argument(metavar="ID", help="the window's id")],
    as_json: JsonFlag = False,
) -> None:
    """Call a window off; those notified of it are told."""
    with client(ctx) as api:
        found = api.cancel_maintenance(window)
    if as_json:
        print_json(found)
        return
    typer.echo(f"maintenance {found['id']} called off ({found['notified']} notification(s))")


def nodes_text(window: dict[str, Any]) -> str:
    return "all" if window["all_nodes"] else ",".join(window["nodes"])


def _moment(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
