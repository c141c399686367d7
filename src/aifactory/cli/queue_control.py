"""Queue control commands: hold, release, update a waiting job; cancel one job or many.

`cancel` takes job ids (naming them is the confirmation, as with `scancel`) or filters (`--state`,
`--name`, `--all-mine`, `--project`). With filters it first asks the facility which jobs match
(a dry run), lists them and asks once; it then cancels exactly the jobs it listed, never ones
that came to match since. A job not found or not yours to cancel is an `error:` line on stderr
and a failing exit; one that had already ended is said, and is no failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, printable, table
from aifactory.cli.units import JsonFlag, parse_duration
from aifactory.client import ApiError, Client

JobIds = Annotated[list[int], typer.Argument(metavar="JOB", help="job ids")]
CHANGES = ("cancelled", "stopping")  # outcomes that end or stop a job
FAILURES = ("not found", "refused")


def register(app: typer.Typer) -> None:
    app.command()(hold)
    app.command()(release)
    # `update 7 --priority -5`: a negative number is the option's value
    app.command("update", context_settings={"ignore_unknown_options": True})(update)
    app.command()(cancel)


def hold(
    ctx: typer.Context,
    job_ids: JobIds,
    reason: Annotated[str | None, typer.Option(help="why: shown with the hold")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold waiting jobs: none starts until you (or an operator) release it."""
    with client(ctx) as api:
        done, failed = _each(job_ids, lambda job_id: api.hold(job_id, reason))
    _said(done, failed, as_json, lambda job: f"job {job['id']} held")


def release(ctx: typer.Context, job_ids: JobIds, as_json: JsonFlag = False) -> None:
    """Release jobs a person held (a hold for data or budget lifts itself once mended)."""
    with client(ctx) as api:
        done, failed = _each(job_ids, api.release)
    _said(done, failed, as_json, lambda job: f"job {job['id']} released: {job['state']}")


def update(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    time_limit: Annotated[
        str | None, typer.Option("--time-limit", "-t", help="30m, 2h, 1h30m or 1:30:00")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(help="0 or below (above 0: operators and admins)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="a new name")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a waiting job's time limit, priority or name."""
    if time_limit is None and priority is None and name is None:
        raise typer.BadParameter("give --time-limit, --priority or --name")
    limit = parse_duration(time_limit) if time_limit is not None else None
    with client(ctx) as api:
        job = api.update(job_id, name=name, time_limit_s=limit, priority=priority)
    if as_json:
        print_json(job)
        return
    typer.echo(
        printable(
            f"job {job['id']} {job['name']}: time limit {job['time_limit_s']} s, "
            f"priority {job['priority']}"
        )
    )


def cancel(
    ctx: typer.Context,
    job_ids: Annotated[list[int] | None, typer.Argument(metavar="JOB", help="job ids")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(help="only jobs in this state, e.g. PENDING, HELD, RUNNING (repeatable)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="only jobs whose name holds this")] = None,
    all_mine: Annotated[bool, typer.Option("--all-mine", help="every job of yours")] = False,
    project: Annotated[str | None, typer.Option(help="only this project's jobs")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel jobs (a running one is stopped: SIGTERM, grace period, SIGKILL): by id, or every
    job not ended that matches all the filters given, after one confirmation."""
    filters: dict[str, Any] = {
        "states": [s.upper() for s in state or []],
        "name": name,
        "mine": all_mine,
        "project": project,
    }
    filtered = any(filters.values())
    if job_ids and filtered:
        raise typer.BadParameter("give job ids or filters, not both")
    if not job_ids and not filtered:
        raise typer.BadParameter("give job ids, or --state, --name, --all-mine or --project")
    with client(ctx) as api:
        ids = list(job_ids or []) or _confirmed(api, filters, yes=yes, as_json=as_json)
        results = api.cancel_many(ids) if ids else []
    _report(results, as_json)


def _confirmed(api: Client, filters: dict[str, Any], *, yes: bool, as_json: bool) -> list[int]:
    """The jobs the filters match now, once the user agreed to cancel them."""
    plan = [r for r in api.cancel_many(dry_run=True, **filters) if r["outcome"] in CHANGES]
    if not plan:
        typer.echo("no job you may cancel matches", err=True)
        return []
    if not yes:
        _show_plan(plan, err=as_json)
        if not typer.confirm(f"Cancel these {len(plan)} job(s)?", err=True):
            typer.echo("nothing cancelled", err=True)
            raise typer.Exit(1)
    return [r["job_id"] for r in plan]


def _show_plan(plan: list[dict[str, Any]], *, err: bool) -> None:
    rows = [
        [
            r["job_id"],
            r["job"]["name"],
            r["job"]["project"],
            r["job"]["user"],
            r["job"]["state"],
            "stop" if r["outcome"] == "stopping" else "cancel",
        ]
        for r in plan
    ]
    if err:  # stdout is for the JSON answer alone
        for row in rows:
            typer.echo(printable(" ".join(str(cell) for cell in row)), err=True)
        return
    table(None, ["id", "name", "project", "user", "state", "will"], rows)


def _report(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(results)
    else:
        for r in results:
            if r["outcome"] not in FAILURES:
                typer.echo(printable(r["message"]))
    failed = [r for r in results if r["outcome"] in FAILURES]
    for r in failed:
        typer.secho(f"error: {printable(r['message'])}", err=True, fg="red")
    if failed:
        raise typer.Exit(1)


def _each(
    job_ids: list[int], call: Callable[[int], dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """`call` on every job, each on its own; the jobs it changed, and whether any refused.
    One job: its refusal is the command's own error. Several: each refusal is a line on
    stderr and the others go on."""
    if len(job_ids) == 1:
        return [call(job_ids[0])], False
    done, failed = [], False
    for job_id in job_ids:
        try:
            done.append(call(job_id))
        except ApiError as exc:
            said = exc.message if f"job {job_id}" in exc.message else f"job {job_id}: {exc.message}"
            typer.secho(f"error: {printable(said)}", err=True, fg="red")
            failed = True
    return done, failed


def _said(
    done: list[dict[str, Any]], failed: bool, as_json: bool, line: Callable[[Any], str]
) -> None:
    if as_json:
        print_json(done)
    else:
        for job in done:
            typer.echo(printable(line(job)))
    if failed:
        raise typer.Exit(1)
