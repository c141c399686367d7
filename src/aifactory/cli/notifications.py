"""`aifactory notifications`: what you are told of (job ends, allocation use and expiry,
proposal decisions, erasures, stopped sessions), by e-mail and/or a signed webhook, and what
was sent to you (docs/notifications.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag, minute

app = typer.Typer(help="Your notifications: preferences, and what was sent.")
prefs_app = typer.Typer(help="What you hear of, and how.")


def register(root: typer.Typer) -> None:
    app.add_typer(prefs_app, name="prefs")
    root.add_typer(app, name="notifications")


@app.callback(invoke_without_command=True)
def notifications_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=200, help="at most this many")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Your notifications, newest first (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.notifications(limit=limit)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "at", "event", "channel", "state", "tries", "subject", "error"],
        [
            [
                n["id"],
                minute(n["created_at"]),
                n["event"],
                n["channel"],
                n["state"],
                n["attempts"],
                n["subject"],
                n["last_error"] or "",
            ]
            for n in found
        ],
        spare=("error",),
    )


@prefs_app.callback(invoke_without_command=True)
def prefs_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show your preferences (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        _show(api.notification_preferences(), as_json)


@prefs_app.command("set")
def prefs_set(
    ctx: typer.Context,
    events: Annotated[
        str | None,
        typer.Option(
            help="comma-separated: job_ended, allocation_used, allocation_expired, "
            "proposal_decided, erasure_completed, session_culled ('' for none)"
        ),
    ] = None,
    email: Annotated[bool | None, typer.Option("--email/--no-email", help="by e-mail")] = None,
    webhook: Annotated[
        str | None, typer.Option(help="a webhook URL the facility allows ('' removes it)")
    ] = None,
    new_secret: Annotated[
        bool, typer.Option("--new-secret", help="a new webhook signing secret (shown once)")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change what you hear of and how; what you leave out stays as it is."""
    chosen = None if events is None else [e for e in events.split(",") if e.strip()]
    with client(ctx) as api:
        found = api.set_notification_preferences(
            events=chosen, email=email, webhook_url=webhook, new_webhook_secret=new_secret
        )
    _show(found, as_json)


def _show(prefs: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(prefs)
        return
    typer.echo(f"events:  {', '.join(prefs['events']) or '(none)'}")
    address = prefs["email_address"] or "no address on your account"
    typer.echo(f"e-mail:  {'yes' if prefs['email'] else 'no'} ({address})")
    typer.echo(f"webhook: {prefs['webhook_url'] or '(none)'}")
    if prefs.get("webhook_secret"):
        typer.echo(f"webhook secret (shown once, keep it): {prefs['webhook_secret']}")
