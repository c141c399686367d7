"""The `aifactory` entry point: global options, the commands, and one error printer.

Every error a command meets — the facility's refusal, an unreachable facility, an option the
CLI itself refuses — is one line on stderr (`error: …`), or with `--json` one JSON object
(`status`, `error`, `field`, `message`), and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

from aifactory.cli import (
    accounting,
    audit,
    datasets,
    eff,
    facility,
    federation,
    gdpr,
    inference,
    job_shell,
    jobs,
    maintenance,
    nodes,
    notifications,
    permissions,
    queue_control,
    recipes,
    sessions,
    sim,
    software,
    tenancy,
)
from aifactory.client import ApiError, Unreachable
from aifactory.client.sso import SignInFailed

app = typer.Typer(
    help="aifactory: run jobs on a sovereign, shared GPU facility.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version  # only when asked: start-up stays lean

        typer.echo(f"aifactory {version('aifactory')}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="facility address", envvar="AIFACTORY_URL")
    ] = None,
    token: Annotated[str | None, typer.Option(help="API token", envvar="AIFACTORY_TOKEN")] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    ctx.obj = {"url": url, "token": token}


jobs.register(app)
queue_control.register(app)
tenancy.register(app)
facility.register(app)
nodes.register(app)
maintenance.register(app)
sim.register(app)
accounting.register(app)
federation.register(app)
audit.register(app)
datasets.register(app)
software.register(app)
inference.register(app)
sessions.register(app)
job_shell.register(app)
gdpr.register(app)
permissions.register(app)
recipes.register(app)
eff.register(app)
notifications.register(app)


def main() -> None:
    as_json = _wants_json(sys.argv[1:])
    try:
        code = app(standalone_mode=False)  # errors come here, not to its own printer
    except ApiError as exc:
        _fail(as_json, 1, status=exc.status, error=exc.code, field=_field(exc), text=_one_line(exc))
    except Unreachable as exc:
        _fail(as_json, 1, status=None, error="unreachable", field=None, text=str(exc))
    except SignInFailed as exc:
        _fail(as_json, 1, status=None, error="sign_in", field=None, text=str(exc))
    except typer.TyperException as exc:  # the parser's: bad options, missing arguments
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already
            sys.exit(exc.exit_code)
        field, text = _usage(exc)
        _fail(as_json, exc.exit_code, status=None, error="usage", field=field, text=text)
    except typer.Abort:
        _fail(as_json, 1, status=None, error="aborted", field=None, text="aborted")
    sys.exit(code if isinstance(code, int) else 0)


def _wants_json(args: list[str]) -> bool:
    """Whether --json was given to aifactory itself (not in a job's command after `--`)."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _fail(
    as_json: bool, code: int, *, status: int | None, error: str, field: str | None, text: str
) -> NoReturn:
    if as_json:
        body = {"status": status, "error": error, "field": field, "message": text}
        typer.echo(json.dumps(body, sort_keys=True), err=True)
    else:
        typer.secho(f"error: {text}", err=True, fg="red")
    sys.exit(code)


def _field(exc: ApiError) -> str | None:
    fields = [e["field"] for e in exc.errors if e.get("field")]
    return fields[0] if len(fields) == 1 else None


def _one_line(exc: ApiError) -> str:
    """The message, led by the field it is about unless the message already names it first."""
    fields = [e for e in exc.errors if e.get("field")]
    if len(fields) == 1 and fields[0]["reason"] in exc.message:
        field = fields[0]["field"]
        if exc.message.split(maxsplit=1)[0].rstrip(":") != field:
            return f"{field}: {exc.message}"
    return exc.message


def _usage(exc: typer.TyperException) -> tuple[str | None, str]:
    """The option or argument an error of the CLI's own is about, and its one line: led by
    that option, ending with where the help is. (Typer keeps the parser's exceptions to
    itself, so their details are read by name.)"""
    field = getattr(exc, "option_name", None)
    text = " ".join(exc.format_message().split())
    if isinstance(exc, typer.BadParameter):
        param: Any = exc.param
        hint = exc.param_hint if isinstance(exc.param_hint, str) else None
        field = param.opts[0] if param is not None and param.opts else hint
        if param is not None and param.param_type_name == "argument":
            field = str(param.name).upper()
        if field and exc.message:  # a missing one has no message: its own line says it
            text = f"{field}: {' '.join(exc.message.split())}"
    ctx: Any = getattr(exc, "ctx", None)
    if ctx is not None:
        text += f" (see {ctx.command_path} --help)"
    return field, text
