"""`aifactory audit`: read the audit log (filters as the API takes them), export it as JSON
Lines, and verify its hash chain. Admins and auditors see every event; project owners and
members their projects'.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag, minute, when_option

app = typer.Typer(help="The audit log: who did what to which object, when, from where.")

Actor = Annotated[str | None, typer.Option(help="who did it (a user name)")]
Object = Annotated[str | None, typer.Option("--object", help="what to: job:12, user:alice…")]
Action = Annotated[str | None, typer.Option(help="what: job.submit, token.revoke, auth.failed…")]
Since = Annotated[str | None, when_option("--since", "from: YYYY-MM-DD (UTC) or ISO 8601")]
Until = Annotated[
    str | None, when_option("--until", "before: YYYY-MM-DD (UTC) or ISO 8601, exclusive")
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audit")


@app.callback(invoke_without_command=True)
def audit_list(
    ctx: typer.Context,
    actor: Actor = None,
    what: Object = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List audit events, oldest first (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.audit(
            actor=actor, object=what, action=action, since=since, until=until, limit=limit
        )
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["seq", "at", "actor", "action", "object", "outcome", "source"],
        [
            [
                e["seq"],
                minute(e["at"]),
                e["actor"],
                e["action"],
                e["object"],
                e["outcome"],
                e["source"],
            ]
            for e in found
        ],
        spare=("source", "outcome"),
    )


@app.command("verify")
def audit_verify(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check that no event was changed, removed or inserted (admins and auditors).

    Exits 0 when the log is intact, 1 when it is broken, naming the first event at fault."""
    with client(ctx) as api:
        result = api.audit_verify()
    if as_json:
        print_json(result)
    elif result["ok"]:
        typer.echo(f"audit log intact: {result['checked']} events")
    else:
        typer.secho(
            f"audit log broken at event {result['first_bad_seq']}: {result['reason']}",
            err=True,
            fg="red",
        )
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("export")
def audit_export(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="write here instead of to stdout")
    ] = None,
    actor: Actor = None,
    what: Object = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
) -> None:
    """Every event you may read (that matches), as JSON Lines, oldest first."""
    with client(ctx) as api:
        lines = api.audit_export(actor=actor, object=what, action=action, since=since, until=until)
        if out is None:
            for line in lines:
                sys.stdout.write(line)
            return
        with out.open("w") as handle:
            count = sum(1 for line in lines if handle.write(line))
    typer.echo(f"wrote {count} events to {out}", err=True)
