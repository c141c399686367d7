"""A command in a running Slurm attempt's sandbox (`aifactory exec`, `aifactory attach`).

The facility runs `srun --overlap` in the attempt's Slurm job, as the project's identity (Slurm
lets no one else, root included, start a step in it), on the node its batch script runs on;
there node_enter.py (run by the node's python3) joins the sandbox's namespaces by its init's
PID, which bubblewrap reported (`status.json`). Being the identity, it can join no sandbox but
its own project's: the kernel refuses another's namespaces. It keeps the identity's uid, with
no capabilities and no new privileges (setpriv); it is a step of the job, so Slurm counts and
confines it with the job and ends it when the job ends. The job's
environment and working directory are those the facility gave its sandbox (`sandbox.args`),
passed to srun in its environment, never on a command line other users could read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aifactory.executors.local.enter import CannotEnter, Shell, spawn

STOP_S = 3.0  # srun ends its step when asked (SIGTERM); then it is killed
NODE_PYTHON = "/usr/bin/python3"  # the node's own, which runs node_enter.py
JOIN = (Path(__file__).parent / "node_enter.py").read_text()


@dataclass(frozen=True, slots=True)
class Step:
    """Where and as whom the command runs: the attempt's Slurm job, its node, its sandbox's
    init there, the identity (uid, gid) and the sandbox's environment and directory."""

    slurm_id: int
    node: str
    init_pid: int
    uid: int
    gid: int
    env: dict[str, str]
    cwd: str

    def argv(self, srun: str, command: list[str], *, tty: bool) -> list[str]:
        inside = ["/usr/bin/setsid", "--ctty", "--wait", "--", *command] if tty else command
        return [
            srun, f"--jobid={self.slurm_id}", "--overlap", "--nodes=1", "--ntasks=1",
            f"--nodelist={self.node}", "--quiet", *(["--pty"] if tty else []),
            "--export=ALL", "--",
            NODE_PYTHON, "-I", "-c", JOIN, str(self.init_pid), self.cwd, *inside,
        ]  # fmt: skip


MAX_OPTIONS = 4 * 1024 * 1024


def sandbox_settings(options: bytes) -> tuple[dict[str, str], str]:
    """The environment (`--setenv K V`) and working directory (`--chdir D`) in bubblewrap's
    options as the facility wrote them (NUL-separated)."""
    words = options.decode("utf-8", "replace").split("\0")
    env: dict[str, str] = {}
    cwd = "/"
    i = 0
    while i < len(words):
        if words[i] == "--setenv" and i + 2 < len(words):
            env[words[i + 1]] = words[i + 2]
            i += 3
        elif words[i] == "--chdir" and i + 1 < len(words):
            cwd = words[i + 1]
            i += 2
        else:
            i += 1
    return env, cwd


def open_step(
    step: Step, command: list[str], *, srun: str, tool_env: dict[str, str], tty: bool, rows: int,
    cols: int,
) -> Shell:  # fmt: skip
    """`command` started in the step's sandbox; a terminal of its own (srun's --pty) with
    `tty`, its size passed on by srun."""
    env = {**tool_env, **step.env}
    if tty:
        env["TERM"] = step.env.get("TERM") or "xterm-256color"
    try:
        shell = spawn(
            step.argv(srun, command, tty=tty),
            env=env,
            tty=tty,
            rows=rows,
            cols=cols,
            user=(step.uid, step.gid),
            controlling=tty,
        )
    except FileNotFoundError:
        raise CannotEnter("srun (Slurm's client) is not installed on the control host") from None
    shell.term_s = STOP_S
    return shell
