"""A command run inside a running job's sandbox (`aifactory exec`, `aifactory attach`).

It joins what the job's own command runs in, so it can do no more than the job: the job's
namespaces (user, mount, PID, network, IPC, UTS, cgroup) through nsenter, with the sandbox's
root; the project's identity (no capabilities, no new privileges: setpriv); the job's control
group and CPUs (its memory and process limits count it, and it is killed with the job); the
job's environment and working directory. It lives in the job's PID namespace, so it ends when
the attempt does. A job in an image (a container) is not entered this way.

The attempt is named by its own records (launch.json, started.json), which the facility
writes; the sandbox's init is checked to be still the child of the attempt's bubblewrap, so a
recycled PID is never entered.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from aifactory.executors.local.jobdir import JobDir, read_json
from aifactory.executors.sandbox import cgroups
from aifactory.executors.sandbox.launcher import enter_group

NAMESPACES = ("--user", "--mount", "--pid", "--net", "--ipc", "--uts", "--cgroup")
HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # of the facility's tools on the way in
EXEC_WITH = """import json, os, sys
with os.fdopen(int(sys.argv[1])) as given:
    spec = json.load(given)
os.chdir(spec["cwd"])
try:
    os.execvpe(sys.argv[2], sys.argv[2:], spec["env"])
except OSError as exc:
    print(f"aifactory: {sys.argv[2]}: {exc.strerror}", file=sys.stderr)
    sys.exit(127)
"""  # the command's exec, with the job's environment and working directory (Entry.argv)


class CannotEnter(RuntimeError):
    """Why the job's sandbox cannot be entered now (said to the caller as it is)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """How to start a command in the attempt's sandbox: `argv(command)` with `env`, and
    `prepare` between fork and exec (as root: into the job's control group)."""

    init_pid: int
    uid: int
    gid: int
    cwd: str
    env: dict[str, str]
    join: tuple[str, ...]
    cpus: tuple[int, ...]

    def argv(self, command: list[str], given: int) -> list[str]:
        """nsenter runs as root, and waits as root for as long as the command runs: the
        job's environment (LD_PRELOAD, anything the user set) is neither its environment nor
        on its command line (any host account reads those). The facility's Python, inside
        the sandbox as the identity, reads it from the descriptor `given` and execs the
        command with it; what runs before has `HOST_ENV` alone."""
        return [
            _tool("nsenter"), f"--target={self.init_pid}", *NAMESPACES, "--root",
            f"--setuid={self.uid}", f"--setgid={self.gid}", "--",
            "/usr/bin/setpriv", "--no-new-privs", "--",
            sys.executable, "-I", "-c", EXEC_WITH, str(given), *command,
        ]  # fmt: skip

    def prepare(self) -> Callable[[], None]:
        join, cpus = self.join, self.cpus
        return lambda: enter_group(join, cpus)


def entry(jobdir: JobDir) -> Entry:
    """How to enter the attempt whose directory is `jobdir`, while it runs."""
    launch = read_json(jobdir.launch)
    started = read_json(jobdir.started)
    if not launch or not started or jobdir.exit.exists():
        raise CannotEnter("the job is not running here")
    if launch.get("image") is not None:
        raise CannotEnter("the job runs in a container image: exec into it is not supported")
    if not launch.get("sandboxed", True):
        raise CannotEnter("the job runs without a sandbox (a benchmark's baseline)")
    init, outer = started.get("init_pid"), started.get("pid")
    if not isinstance(init, int) or not isinstance(outer, int) or _parent(init) != outer:
        raise CannotEnter("the job's sandbox has ended")
    sandbox = launch["sandbox"]
    identity = sandbox["identity"]
    group = _group(launch)
    return Entry(
        init_pid=init,
        uid=int(identity["uid"]),
        gid=int(identity["gid"]),
        cwd=str(sandbox["cwd"]),
        env={str(k): str(v) for k, v in (sandbox.get("env") or {}).items()},
        join=tuple(group.join_files()) if group is not None else (),
        cpus=tuple(int(c) for c in launch.get("cpu_affinity") or ()),
    )


def _group(launch: dict[str, object]) -> cgroups.JobGroup | None:
    version, name = cgroups.detect(), launch.get("cgroup")
    if version is None or not isinstance(name, str):
        return None
    return cgroups.job_group(version, name)


def _parent(pid: int) -> int | None:
    """The parent of `pid` (from /proc: the fields after the command's closing parenthesis)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _tool(name: str) -> str:
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if found is None:
        raise CannotEnter(f"{name} (util-linux) is not installed on this host")
    return found


@dataclass
class Shell:
    """A command started in a sandbox: write its input to `stdin`, read its output (stdout
    and stderr, one stream; a terminal's with `tty`) from `output`."""

    proc: subprocess.Popen[bytes]
    stdin: int
    output: int
    tty: bool
    term_s: float = 0.0  # asked to end (SIGTERM) this long before it is killed: srun ends its
    # step on the node when asked, not when killed

    def resize(self, rows: int, cols: int) -> None:
        if self.tty:
            fcntl.ioctl(self.output, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def close_input(self) -> None:
        if self.tty:
            os.write(self.stdin, b"\x04")  # end of input, as a terminal says it
        elif self.stdin >= 0:
            os.close(self.stdin)
            self.stdin = -1

    def close(self) -> None:
        """The command and what it started (still its descendants) are killed, then nsenter:
        none of it outlives the exchange (what it detached ends with the job)."""
        if self.term_s and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=self.term_s)
        try:
            started = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            started = []
        for process in started:
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in {self.stdin, self.output} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)


def start(entry: Entry, command: list[str], *, tty: bool, rows: int = 24, cols: int = 80) -> Shell:
    """Start `command` in the sandbox `entry` names; a terminal of its own with `tty`."""
    env = {**entry.env, "TERM": entry.env.get("TERM") or "xterm-256color"} if tty else entry.env
    # With a terminal, a session of its own inside the sandbox, the terminal its controlling
    # one: job control then never looks for a process group outside its PID namespace.
    inside = ["/usr/bin/setsid", "--ctty", "--wait", "--", *command] if tty else command
    given = os.memfd_create("aifactory-exec", 0)
    try:
        os.write(given, json.dumps({"env": env, "cwd": entry.cwd}).encode())
        os.lseek(given, 0, os.SEEK_SET)
        return spawn(
            entry.argv(inside, given), env=HOST_ENV, tty=tty, rows=rows, cols=cols,
            prepare=entry.prepare(), pass_fds=(given,),
        )  # fmt: skip
    finally:
        os.close(given)


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    tty: bool,
    rows: int = 24,
    cols: int = 80,
    prepare: Callable[[], None] | None = None,
    user: tuple[int, int] | None = None,
    controlling: bool = False,
    pass_fds: tuple[int, ...] = (),
) -> Shell:
    """`argv` in a session of its own, its input and output a terminal (`tty`) or pipes;
    `prepare` between fork and exec; as `user` (uid, gid; no other groups); `controlling`:
    the terminal is its controlling one (a program that passes on its window size)."""
    as_user: dict[str, Any] = (
        {"user": user[0], "group": user[1], "extra_groups": []} if user is not None else {}
    )
    if tty:
        master, slave = pty.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        before = _with_terminal(prepare) if controlling else prepare
        try:
            proc = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                start_new_session=True, preexec_fn=before, pass_fds=pass_fds, **as_user,
            )  # fmt: skip
        finally:
            os.close(slave)
        return Shell(proc, master, master, tty=True)
    read_out, write_out = os.pipe2(os.O_CLOEXEC)
    read_in, write_in = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            argv, stdin=read_in, stdout=write_out, stderr=write_out, env=env,
            start_new_session=True, preexec_fn=prepare, pass_fds=pass_fds, **as_user,
        )  # fmt: skip
    finally:
        os.close(write_out)
        os.close(read_in)
    return Shell(proc, write_in, read_out, tty=False)


def _with_terminal(prepare: Callable[[], None] | None) -> Callable[[], None]:
    def before() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: standard input's terminal
        if prepare is not None:
            prepare()

    return before


def open_shell(
    jobdir: JobDir, command: list[str], *, tty: bool, rows: int = 24, cols: int = 80
) -> Shell:
    """`command` started in the sandbox of the attempt whose directory is `jobdir`."""
    return start(entry(jobdir), command, tty=tty, rows=rows, cols=cols)
