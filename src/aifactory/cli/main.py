"""The `aifactory` entry point: global options, the commands, and one error printer."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from aifactory.cli import (
    accounting,
    audit,
    datasets,
    facility,
    gdpr,
    jobs,
    permissions,
    recipes,
    sim,
    tenancy,
)
from aifactory.client import ApiError, Unreachable

app = typer.Typer(
    help="aifactory: run jobs on a sovereign, shared GPU facility.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="facility address", envvar="AIFACTORY_URL")
    ] = None,
    token: Annotated[str | None, typer.Option(help="API token", envvar="AIFACTORY_TOKEN")] = None,
) -> None:
    ctx.obj = {"url": url, "token": token}


jobs.register(app)
tenancy.register(app)
facility.register(app)
sim.register(app)
accounting.register(app)
audit.register(app)
datasets.register(app)
gdpr.register(app)
permissions.register(app)
recipes.register(app)


def main() -> None:
    try:
        app()
    except ApiError as exc:
        typer.secho(f"error: {_one_line(exc)}", err=True, fg="red")
        sys.exit(1)
    except Unreachable as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(1)


def _one_line(exc: ApiError) -> str:
    """The message, led by the field it is about unless the message already names it first."""
    fields = [e for e in exc.errors if e.get("field")]
    if len(fields) == 1 and fields[0]["reason"] in exc.message:
        field = fields[0]["field"]
        if exc.message.split(maxsplit=1)[0].rstrip(":") != field:
            return f"{field}: {exc.message}"
    return exc.message
