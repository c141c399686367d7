"""A command in a running Slurm attempt's sandbox (`aifactory exec`, `aifactory attach`).

The facility runs `srun --overlap` in the attempt's Slurm job, as the project's identity (Slurm
lets no one else, root included, start a step in it), on the node its batch script runs on;
there node_enter.py (run by the node's python3) joins the sandbox's namespaces by its init's
PID, which bubblewrap reported (`status.json`), once it has checked the PID is of this job.
Being the identity, it can join no sandbox but its own project's: the kernel refuses
another's namespaces. It keeps the identity's uid, with no capabilities and no new privileges;
it is a step of the job, so Slurm counts and confines it with the job and ends it when the
job ends. The job's environment and working directory are those the facility gave its
sandbox (`sandbox.args`), read on the node and given to the command's exec alone: never to
srun or anything before the sandbox, never on a command line other users could read.
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
    init there, the identity (uid, gid) and the sandbox's options (what node_enter.py gives
    the command: its environment and directory)."""

    slurm_id: int
    node: str
    init_pid: int
    uid: int
    gid: int
    options: Path  # bubblewrap's options for the sandbox (its environment and directory)

    def argv(self, srun: str, command: list[str], *, tty: bool) -> list[str]:
        return [
            srun, f"--jobid={self.slurm_id}", "--overlap", "--nodes=1", "--ntasks=1",
            f"--nodelist={self.node}", "--quiet", *(["--pty"] if tty else []),
            "--export=NONE", "--",
            NODE_PYTHON, "-I", "-c", JOIN, str(self.init_pid), str(self.options),
            "1" if tty else "0", *command,
        ]  # fmt: skip


def open_step(
    step: Step, command: list[str], *, srun: str, tool_env: dict[str, str], tty: bool, rows: int,
    cols: int,
) -> Shell:  # fmt: skip
    """`command` started in the step's sandbox; a terminal of its own (srun's --pty) with
    `tty`, its size passed on by srun. srun and what it starts on the node run with the tools'
    environment only: the job's (LD_PRELOAD, SLURM_CONF, anything its user set) is given, on
    the node, to the command's exec alone."""
    env = dict(tool_env)
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
