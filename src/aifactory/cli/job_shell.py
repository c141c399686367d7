"""`aifactory exec JOB -- CMD` and `aifactory attach JOB`: a command, or an interactive shell,
inside a running job's (or session's) sandbox, as the job runs: its identity, namespaces,
datasets, GPUs and limits. For who submitted the job and its project's owners; audited.

    aifactory exec 12 -- nvidia-smi        # its output; exits with the command's code
    aifactory attach 12                    # a terminal in the job (exit or Ctrl-D leaves)
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Annotated

import typer

from aifactory.cli.context import client

JobId = Annotated[int, typer.Argument(metavar="JOB", help="the job's (or session's) id")]
SHELL = ["sh", "-c", 'exec "$(command -v bash || echo sh)" -i']


def register(app: typer.Typer) -> None:
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_in_job)
    app.command("attach")(attach)


def exec_in_job(
    ctx: typer.Context,
    job_id: JobId,
    command: Annotated[list[str], typer.Argument(metavar="-- COMMAND...", help="what to run")],
) -> None:
    """Run COMMAND in the running job's sandbox; its output here, its exit code ours. What
    comes on standard input (not a terminal) is its input."""
    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise typer.BadParameter("name the command after --", param_hint="COMMAND")
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    out = sys.stdout.buffer

    def write(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    with client(ctx) as api:
        code = api.exec(job_id, argv, stdin=stdin, output=write)
    raise typer.Exit(code)


def attach(ctx: typer.Context, job_id: JobId) -> None:
    """An interactive shell (bash, else sh) in the running job's sandbox, in this terminal."""
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        typer.echo("error: attach needs a terminal; use aifactory exec for a command", err=True)
        raise typer.Exit(2)
    import signal
    import termios
    import tty

    size = shutil.get_terminal_size()
    with client(ctx) as api:
        shell = api.job_shell(job_id, SHELL, tty=True, rows=size.lines, cols=size.columns)
        saved = termios.tcgetattr(sys.stdin)
        tty.setraw(sys.stdin)
        signal.signal(
            signal.SIGWINCH,
            lambda *_: shell.resize(*reversed(tuple(shutil.get_terminal_size()))),
        )

        def keys() -> None:
            while True:
                data = os.read(sys.stdin.fileno(), 4096)
                if not data:
                    return
                try:
                    shell.send(data)
                except Exception:
                    return

        threading.Thread(target=keys, daemon=True).start()
        try:
            for chunk in shell.output():
                os.write(sys.stdout.fileno(), chunk)
        finally:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
            shell.close()
    raise typer.Exit(shell.exit_code or 0)
