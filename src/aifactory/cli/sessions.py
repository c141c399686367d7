"""`aifactory session`: interactive sessions, JupyterLab (or a shell in it) as a job of the
project, queued, scheduled and billed as any job, and opened in a browser.

    aifactory session start --project nlp --gpus 1 --idle-timeout 30m   # queued
    aifactory session open 12        # a one-use link (valid a minute), opened in the browser
    aifactory session stop 12        # its GPUs go back

A session's id is its job's. Opening one prints a link that works once, within a minute: it is
opened here when there is a display to open it on, and otherwise (over SSH) printed for the
browser of the machine in front of you.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, printable, table, when
from aifactory.cli.units import JsonFlag, megabytes, parse_duration
from aifactory.client import Client
from aifactory.domain.interactive import Kind

app = typer.Typer(help="Interactive sessions: JupyterLab or a shell on the facility's GPUs.")
SessionId = Annotated[int, typer.Argument(metavar="SESSION", help="the session's id (its job's)")]
Json = dict[str, Any]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="session")


def _memory(text: str) -> int:
    try:
        return megabytes(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("start")
def start(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="default: your default project")] = None,
    kind: Annotated[
        Kind | None,
        typer.Option(
            help="jupyter (JupyterLab) or shell (a terminal in it)", show_default="jupyter"
        ),
    ] = None,
    gpus: Annotated[int | None, typer.Option(min=0, show_default="0")] = None,
    cpus: Annotated[int | None, typer.Option(min=1, show_default="1")] = None,
    memory_mb: Annotated[
        int | None,
        typer.Option(
            "--memory", parser=_memory, metavar="SIZE", help="e.g. 8G or 512M", show_default="4G"
        ),
    ] = None,
    gpu_model: Annotated[str | None, typer.Option("--gpu-model")] = None,
    time_limit: Annotated[
        int | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="stopped after this long, idle or not: 30m, 8h, 1d",
            show_default="8h",
        ),
    ] = None,
    idle_timeout: Annotated[
        int | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="stopped after this long with no kernel activity and no connection",
            show_default="30m",
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="a dataset it reads, NAME or NAME@VERSION (repeatable)"),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(help="a Python environment with jupyterlab (default: the facility's)"),
    ] = None,
    open_it: Annotated[
        bool,
        typer.Option("--open", help="wait until it is ready, then open it (as `session open`)"),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a session: JupyterLab as a job of the project, in the queue as any job.

    Open it with `aifactory session open ID` once it runs (--open waits for that)."""
    with client(ctx) as api:
        found = api.start_session(
            project=project,
            kind=kind.value if kind else None,
            gpus=gpus,
            cpus=cpus,
            memory_mb=memory_mb,
            gpu_model=gpu_model,
            time_limit_s=time_limit,
            idle_timeout_s=idle_timeout,
            datasets=dataset or (),
            environment=environment,
        )
        if open_it:
            typer.echo(_started(found), err=True)
            _open(api, _ready(api, found), browser=True, as_json=as_json)
            return
    if as_json:
        print_json(found)
        return
    typer.echo(_started(found))
    typer.echo(f"next: aifactory session open {found['id']}  (once it runs; --open waits for it)")


def _started(found: Json) -> str:
    why = f": {found['state_reason']}" if found["state_reason"] else ""
    return printable(
        f"session {found['id']} {found['state']} in project {found['project']} "
        f"({found['kind']}, {_asks(found)}){why}"
    )


def _ready(api: Client, found: Json) -> Json:
    """The session once ready or ended; Ctrl-C stops the waiting, not the session."""
    sid = found["id"]
    typer.echo(f"waiting for session {sid} to be ready (Ctrl-C stops waiting, not it)", err=True)
    try:
        return api.wait_session_ready(sid, timeout_s=None)
    except KeyboardInterrupt:
        typer.echo(
            f"session {sid} keeps its place: `aifactory session open {sid}` once it runs, "
            f"`aifactory session stop {sid}` to give it up",
            err=True,
        )
        raise typer.Abort() from None


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The sessions of the projects whose jobs you may see, newest first."""
    with client(ctx) as api:
        found = api.sessions(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "project", "kind", "owner", "state", "GPUs", "idle for", "time left", "€", "note"],
        [
            [
                s["id"],
                s["project"],
                s["kind"],
                s["owner"],
                s["state"],
                s["gpus"],
                "busy" if s["busy"] else _span(s["idle_for_s"]),
                _span(s["time_left_s"]),
                s["cost"],
                _note(s),
            ]
            for s in found
        ],
        last_wraps_to=40,
    )


def _note(found: Json) -> str | None:
    if found["culled_reason"]:
        return f"culled: {found['culled_reason']}"
    if found["stopping"]:
        return "stopping"
    return "ready" if found["ready"] else None


@app.command("show")
def show(ctx: typer.Context, session_id: SessionId, as_json: JsonFlag = False) -> None:
    """A session: what it asks, where it stands, how long it may stay idle, what it costs."""
    with client(ctx) as api:
        found = api.session(session_id)
    if as_json:
        print_json(found)
        return
    for line in _described(found):
        typer.echo(printable(line))


def _described(s: Json) -> list[str]:
    why = f"  {s['state_reason']}" if s["state_reason"] else ""
    lines = [f"session {s['id']}  {s['kind']}  [{s['state']}]{why}"]
    if s["culled_reason"]:
        lines.append(f"  CULLED  {s['culled_reason']}")
    if s["stopping"]:
        lines.append("  stopping: its GPUs go back once it has stopped")
    lines += [
        f"  project {s['project']}, owner {s['owner']}",
        f"  asks    {_asks(s)}; time limit {_span(s['time_limit_s'])}, "
        f"idle timeout {_span(s['idle_timeout_s'])}",
        f"  data    {', '.join(s['datasets']) or 'none'}",
        f"  python  {s['environment'] or 'the facility default'}",
        f"  times   submitted {when(s['submitted_at'])}, started {when(s['started_at'])}, "
        f"ended {when(s['ended_at'])}",
        f"  ready   {'yes: its notebook server answers' if s['ready'] else 'no'}",
    ]
    if s["busy"]:
        lines.append("  in use  a kernel runs or a notebook is open")
    elif s["idle_for_s"] is not None:
        cull = f"; stopped if idle {_span(s['cull_in_s'])} longer" if s["cull_in_s"] else ""
        lines.append(f"  idle    for {_span(s['idle_for_s'])}{cull}")
    if s["time_left_s"] is not None:
        lines.append(f"  left    {_span(s['time_left_s'])} until its time limit")
    lines.append(f"  cost    € {s['cost']} so far")
    if s["ended_at"] is None and not s["stopping"]:
        lines.append(f"  next    aifactory session open {s['id']}")
    return lines


@app.command("stop")
def stop(ctx: typer.Context, session_id: SessionId, as_json: JsonFlag = False) -> None:
    """Stop a session as a job is cancelled (SIGTERM, then its grace): its GPUs go back."""
    with client(ctx) as api:
        found = api.stop_session(session_id)
    if as_json:
        print_json(found)
    elif found["ended_at"] is not None:
        typer.echo(f"session {session_id} {found['state']}")
    else:
        typer.echo(f"session {session_id} stopping: its GPUs go back once it has stopped")


@app.command("open")
def open_session(
    ctx: typer.Context,
    session_id: SessionId,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="only print the link, for another machine")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Open a running session in a browser, by a link that works once, within a minute.

    Run it again for another link."""
    with client(ctx) as api:
        _open(api, {"id": session_id}, browser=not no_browser, as_json=as_json)


def _open(api: Client, found: Json, *, browser: bool, as_json: bool) -> None:
    """Print the session's one-use link (stdout) and open it where there is a display. The
    facility refuses (409) a session that does not run."""
    url = api.open_session(found["id"])
    if as_json:
        print_json({**found, "url": url})
    else:
        typer.echo(url)
    once = "the link works once, within a minute"
    if not browser:
        typer.echo(f"{once}: open it in your browser", err=True)
    elif not _has_display():
        typer.echo(f"{once}: no display here to open it on, open it in your browser", err=True)
    else:
        import webbrowser  # only when a browser is asked for: start-up stays lean

        opened = webbrowser.open(url)
        typer.echo(once if opened else f"{once}: no browser found, open it in yours", err=True)


def _has_display() -> bool:
    """Whether a browser here could show the page: on macOS and Windows, and elsewhere with an X
    or Wayland display (without one, `webbrowser` would start a text browser in the terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _asks(s: Json) -> str:
    return f"{s['gpus']} GPU, {s['cpus']} CPU, {_size(s['memory_mb'])}"


def _size(mb: int) -> str:
    if mb < 1024:
        return f"{mb} MB"
    return f"{mb / 1024:.1f}".removesuffix(".0") + " GB"


def _span(seconds: float | None) -> str | None:
    """A duration for reading, to its two largest units: 45 s, 12 min, 2 h 5 min, 1 d 3 h."""
    if seconds is None:
        return None
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = [f"{n} {unit}" for n, unit in parts[:2] if n or unit == parts[0][1]]
    return " ".join(shown)
