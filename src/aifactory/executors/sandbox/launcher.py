"""Starting and stopping one sandboxed command from a process that runs as root (the local
supervisor) or as the facility's own user (`shared` identities).

The process tree: the caller → bubblewrap's monitor (its child, in the job's control group) →
the sandbox's init (PID 1 in the job's PID namespace; `init_pid` is its pid out here) → the
command (PID 2, in the process group and session of the init) → whatever the command starts.

- Every mount source is opened by the caller (`Binder`), judged on that descriptor (a
  directory the user named must be the identity's own and none of the facility's), and, where
  the caller is root, placed on the stage (`stage`) through it: the job's identity needs no
  right to walk the facility's directories, and a path swapped for a link after the check
  cannot redirect a mount.
- In the child, before exec: enter the control group, then drop to the job's identity (groups,
  gid, uid). bubblewrap starts with an empty environment of its own; the job's comes in through
  `--setenv`, so nothing in it (LD_PRELOAD, say) acts before the sandbox exists.
- Stopping: SIGTERM goes to the command's process group (the init ignores it), SIGKILL to the
  init, whose end takes every process of the namespace with it (the kernel's rule).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from aifactory.executors.sandbox.paths import inside, overlaps
from aifactory.executors.sandbox.spec import Access, Mount, SandboxSpec, bwrap_options
from aifactory.executors.sandbox.stage import Stage

BWRAP = "/usr/bin/bwrap"
STATUS_WAIT_S = 30.0


class SandboxRefused(RuntimeError):
    """A mount the job asked for may not be given (missing, not its own, the facility's)."""


class Binder:
    """Opens each source, judges it on the descriptor, and names it for bubblewrap: by its
    entry on the stage (`stage` given: the caller is root) or by its own path (the caller is
    the identity itself, which can reach what it may mount; or a system path anyone reaches,
    such as /usr, which needs no stage). A source the user named (`Mount.users`) must be a
    directory of the job's identity inside one of `spec.workdir_roots`, outside every
    protected path, and is always staged.

    The descriptors it opens are closed once the options are made (the stage holds the
    mounts); only the memory files bubblewrap reads (`passed`) go to it, and it closes them
    before the command runs: a job inherits no descriptor of the facility's."""

    def __init__(self, spec: SandboxSpec, stage: Stage | None = None) -> None:
        self.fds: list[int] = []
        self.passed: list[int] = []
        self.spec = spec
        self.stage = stage

    def mount(self, mount: Mount) -> list[str]:
        if mount.users:
            self._check_path(mount)
        try:
            fd = os.open(mount.source, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SandboxRefused(f"{mount.what} does not exist: {mount.source}") from None
        except OSError as exc:
            raise SandboxRefused(f"{mount.what} {mount.source}: {exc.strerror}") from None
        self.fds.append(fd)
        if mount.users:
            self._check(fd, mount)
        staged = self.stage is not None and (mount.users or not _open_to_all(mount.source))
        source = self.stage.place(fd) if self.stage is not None and staged else mount.source
        flag = {Access.READ: "--ro-bind", Access.WRITE: "--bind", Access.DEVICE: "--dev-bind"}
        return [flag[mount.access], source, mount.target]

    def _check_path(self, mount: Mount) -> None:
        """Before anything is opened: a path outside the roots is refused unlooked-at (the
        answer tells nothing of what exists there)."""
        if not any(inside(os.path.normpath(mount.source), r) for r in self.spec.workdir_roots):
            raise SandboxRefused(self._outside(mount))

    def _outside(self, mount: Mount) -> str:
        roots = ", ".join(self.spec.workdir_roots)
        return (
            f"{mount.what} {mount.source} is not in a directory given to projects ({roots}): "
            "work in the job's own directory"
        )

    def _check(self, fd: int, mount: Mount) -> None:
        found = os.fstat(fd)
        identity = self.spec.identity
        if not stat.S_ISDIR(found.st_mode):
            raise SandboxRefused(f"{mount.what} is not a directory: {mount.source}")
        real = os.readlink(f"/proc/self/fd/{fd}")
        if not any(inside(real, root) for root in self.spec.workdir_roots):
            raise SandboxRefused(self._outside(mount))
        if identity.uid != os.geteuid() and found.st_uid != identity.uid:
            raise SandboxRefused(
                f"{mount.what} {mount.source} does not belong to the project's identity "
                f"{identity.name} (uid {identity.uid}): chown it, or work in the job's directory"
            )
        if any(overlaps(real, secret) for secret in self.spec.protected):
            raise SandboxRefused(f"{mount.what} {mount.source} is the facility's")

    def data(self, target: str, content: str) -> list[str]:
        return ["--ro-bind-data", str(self.memory_file(target, content.encode())), target]

    def memory_file(self, name: str, content: bytes) -> int:
        fd = os.memfd_create(f"aifactory{name.replace('/', '-')}", os.MFD_CLOEXEC)
        self.passed.append(fd)
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def close_sources(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()

    def close(self) -> None:
        self.close_sources()
        for fd in self.passed:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.passed.clear()


@dataclass
class Sandboxed:
    """A started sandbox: bubblewrap's monitor (`proc`) and the init's pid (None: it never
    came up; the reason is in the log). The init is signalled through a pidfd, so a pid the
    kernel gave to another process after the init ended is never hit."""

    proc: subprocess.Popen[bytes]
    init_pid: int | None
    whole_group: bool = False  # kill the init's process group (no namespace to end with it)
    _status: BinaryIO | None = field(default=None, repr=False)
    _pidfd: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.init_pid is not None:
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(self.init_pid)

    def _init_alive(self) -> bool:
        if self._pidfd is None:
            return False
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        return not readable  # a pidfd turns readable when its process ends

    def terminate(self) -> None:
        """SIGTERM to the command and its process group: the job's chance to checkpoint."""
        if self.init_pid is not None and self._init_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.init_pid, signal.SIGTERM)

    def kill(self) -> None:
        """The whole namespace at once: its init goes, and the kernel takes every process in
        it with it; the monitor then ends, passing on 128 + 9."""
        if self.whole_group and self.init_pid is not None and self._init_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.init_pid, signal.SIGKILL)
        elif self._pidfd is not None and self._init_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        elif self.proc.returncode is None:  # no init known: the monitor, and the init dies of it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self.proc.kill()

    def wait(self, timeout: float | None = None) -> int:
        """The monitor's exit status: the command's code (128 + N when signal N killed it)."""
        code = self.proc.wait(timeout)
        for fd in (self._status, self._pidfd):  # the status pipe stays open until now: the
            if isinstance(fd, int):  # monitor writes to it last
                os.close(fd)
            elif fd is not None:
                fd.close()
        self._status = self._pidfd = None
        return code


def spawn(
    spec: SandboxSpec,
    command: Sequence[str],
    *,
    log: BinaryIO,
    join: Sequence[str] = (),
    cpus: Sequence[int] = (),
    stage: Stage | None = None,
    bwrap: str = BWRAP,
) -> Sandboxed:
    """Start `command` in `spec`'s sandbox, its output appended to `log`; `join` names the
    control group files to enter, `cpus` the affinity, `stage` where root places the mounts'
    sources (None: the caller is the identity itself)."""
    binder = Binder(spec, stage)
    status_read, status_write = os.pipe2(os.O_CLOEXEC)
    try:
        options = [*bwrap_options(spec, binder), "--json-status-fd", str(status_write)]
        binder.close_sources()  # mounted on the stage: no descriptor of them reaches the job
        args_fd = binder.memory_file("args", ("\0".join(options) + "\0").encode())
        proc = subprocess.Popen(
            [bwrap, "--args", str(args_fd), "--", *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            pass_fds=(*binder.passed, status_write),  # bubblewrap reads and closes these
            process_group=0,
            preexec_fn=_enter(spec, join, cpus),
        )
    except BaseException:
        os.close(status_read)
        raise
    finally:
        os.close(status_write)
        binder.close()
    status = os.fdopen(status_read, "rb")
    return Sandboxed(proc, _init_pid(status), _status=status)


def spawn_unsandboxed(
    command: Sequence[str], *, env: Mapping[str, str], cwd: str, log: BinaryIO
) -> Sandboxed:
    """The baseline benchmarks/sandbox_start.py compares with: the command as a plain child of
    the caller, in a process group of its own (no namespaces, identity or control group). No
    setting of the facility runs jobs so."""
    proc = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    return Sandboxed(proc, proc.pid, whole_group=True)


def _enter(spec: SandboxSpec, join: Sequence[str], cpus: Sequence[int]) -> Callable[[], None]:
    """What the child does between fork and exec (as root, where the facility is root)."""
    identity = spec.identity
    switch = identity.uid != os.geteuid()

    def enter() -> None:
        try:
            enter_group(join, cpus)
            if switch:
                os.setgroups([identity.gid])
                os.setresgid(identity.gid, identity.gid, identity.gid)
                os.setresuid(identity.uid, identity.uid, identity.uid)
        except OSError as exc:  # said in the job's log: the parent learns only that it failed
            os.write(2, f"aifactory: entering the job's group or identity: {exc}\n".encode())
            raise

    return enter


def enter_group(join: Sequence[str], cpus: Sequence[int]) -> None:
    """Between fork and exec: into the attempt's control group (`join`: its procs files) and
    onto its CPUs, before anything of the job runs."""
    for path in join:
        with open(path, "w") as procs:
            procs.write("0")
    if cpus:
        os.sched_setaffinity(0, set(cpus))


def _init_pid(status: BinaryIO) -> int | None:
    """bubblewrap's first status line names the init; none comes if setting up failed."""
    ready, _, _ = select.select([status], [], [], STATUS_WAIT_S)
    if not ready:
        return None
    line = status.readline()
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict) and isinstance(record.get("child-pid"), int):
            return int(record["child-pid"])
    return None


def _open_to_all(path: str) -> bool:
    """Whether any user can reach `path` (every directory above searchable by others, itself
    readable): such a source needs no stage. A wrong yes only fails the job's start (bubblewrap
    is refused), never gives it more."""
    real = os.path.realpath(path)
    try:
        if any(not os.stat(p).st_mode & stat.S_IXOTH for p in _parents(real)):
            return False
        mode = os.stat(real).st_mode
    except OSError:
        return False
    wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & wanted == wanted


def _parents(path: str) -> list[str]:
    parts = path.split("/")[1:-1]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts) + 1)]
