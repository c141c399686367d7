"""Starting and stopping one job in an OCI image, with the system's OCI runtime (runc or crun),
from the local supervisor (root, in a mount namespace of its own: `Stage.enter()`).

The process tree: the supervisor → the runtime (`runtime run`, its child, in the job's control
group) → tini, the container's PID 1 (`init_pid` out here) → the command, in a process group
of its own → whatever the command starts. The runtime stays in the foreground until the
container ends and passes its exit status on (128 + N for a command killed by signal N).

- The bundle (`config.json`, the facility's /etc files, the runtime's state and log) lies in
  the attempt's directory, the facility's alone. The image's rootfs is never written: the
  container's root is an overlay of it whose upper layer (the mount points the runtime makes)
  is on the stage's tmpfs, in the supervisor's own mount namespace, and goes with it.
- Every mount source goes through the bubblewrap launcher's `Binder`: judged on an open
  descriptor (a directory the user named must be the identity's own, none of the facility's)
  and placed on the stage, so the runtime mounts exactly what was judged.
- The runtime runs as root and switches to the job's identity itself; the control group is
  entered before exec, so the runtime and everything it starts are in it. It keeps the group
  (the runtime cannot remove a group it is itself in): the supervisor reads its figures, then
  removes it.
- Stopping: SIGTERM to tini, which forwards it to the command's process group; SIGKILL to tini
  ends the PID namespace and every process in it. Unlike bubblewrap the runtime does not die
  with the supervisor: a lost attempt's processes are killed through its control group.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aifactory.executors.sandbox.launcher import Binder, Sandboxed, SandboxRefused, enter_group
from aifactory.executors.sandbox.oci import oci_config
from aifactory.executors.sandbox.spec import Mount, SandboxSpec
from aifactory.executors.sandbox.stage import Stage

TINI = "/usr/bin/tini-static"  # Debian's tini: static, so it runs in any image
RUNTIMES = ("runc", "crun")
RUNTIME_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
START_WAIT_S = 30.0
DELETE_WAIT_S = 30.0
_TINI_EXEC = re.compile(r"^\[FATAL tini \(\d+\)\] exec (.+) failed: (.+)$")
_RUNTIME_FAILED = ("runc run failed: ", "crun: ")


def find_runtime(configured: Path | None = None) -> str | None:
    """The OCI runtime to run images with: the configured one, else runc, else crun (None:
    none is installed)."""
    if configured is not None:
        return str(configured)
    for name in RUNTIMES:
        for directory in RUNTIME_DIRS:
            path = Path(directory) / name
            if os.access(path, os.X_OK):
                return str(path)
    return None


@dataclass
class Contained(Sandboxed):
    """A started container: the runtime (`proc`) and tini's pid. Once the runtime has ended,
    whatever it left of the container (it was killed, say) is deleted."""

    runtime: str = ""
    state: str = ""
    name: str = ""

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if os.path.exists(os.path.join(self.state, self.name)):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [self.runtime, "--root", self.state, "delete", "--force", self.name],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=DELETE_WAIT_S,
                    check=False,
                )
        return code


def spawn_container(
    spec: SandboxSpec,
    command: Sequence[str],
    *,
    log: BinaryIO,
    bundle: Path,
    rootfs: str,
    image_env: Sequence[str],
    join: Sequence[str],
    cpus: Sequence[int],
    cgroups_path: str | None,
    runtime: str,
    stage: Stage,
    name: str,
    init: str = TINI,
) -> Contained:
    """Start `command` in `spec`'s world over the image root file system `rootfs`, its output
    (and the runtime's complaints) appended to `log`. `join` names the control group files to
    enter, `cgroups_path` the same group for the runtime; `name` is the container's id."""
    bundle.mkdir(mode=0o700, exist_ok=True)
    staged = _staged(spec, stage)
    config = oci_config(
        staged,
        rootfs=_overlay(rootfs, bundle, stage, name),
        image_env=image_env,
        init=init,
        command=command,
        cgroups_path=cgroups_path,
        files=_write_files(spec, bundle),
        device_numbers=_device_numbers(staged.devices),
    )
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    state, pid_file = bundle / "state", bundle / "pid"
    pid_file.unlink(missing_ok=True)
    args = [runtime, "--root", str(state), f"--log={bundle / 'runtime.log'}", "run",
            "--bundle", str(bundle), "--pid-file", str(pid_file), name]  # fmt: skip
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        process_group=0,
        preexec_fn=_enter(join, cpus),
    )
    init_pid = _wait_for_pid(proc, pid_file)
    return Contained(proc, init_pid, runtime=runtime, state=str(state), name=name)


def startup_error(last_line: str, command: Sequence[str]) -> str | None:
    """The reason, when the log's last line is the runtime's or tini's own complaint (the
    container could not be made, or the command not started in it); None when the job itself
    said it."""
    found = _TINI_EXEC.match(last_line)
    if found is not None:
        what = command[0] if command else found[1]
        if found[2] == "No such file or directory":
            return f"command not found: {what}"
        if found[2] == "Permission denied":
            return f"command is not executable: {what}"
        return f"the command could not be started: {found[2]}"
    for prefix in _RUNTIME_FAILED:
        if last_line.startswith(prefix):
            return f"the container could not be set up: {last_line.removeprefix(prefix)}"
    return None


def _staged(spec: SandboxSpec, stage: Stage) -> SandboxSpec:
    """`spec` with every source the container mounts judged and placed on the stage."""
    binder = Binder(spec, stage)
    try:
        return dataclasses.replace(
            spec,
            writable=_placed(binder, spec.writable),
            datasets=_placed(binder, spec.datasets),
            devices=_placed(binder, spec.devices),
        )
    finally:
        binder.close()  # the stage holds the mounts now


def _placed(binder: Binder, mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
    """Each mount with the source `binder` names for it (bubblewrap's FLAG SOURCE TARGET)."""
    return tuple(dataclasses.replace(m, source=binder.mount(m)[1]) for m in mounts)


def _write_files(spec: SandboxSpec, bundle: Path) -> dict[str, str]:
    """The facility's /etc files for the container, readable by its user: target → path."""
    directory = bundle / "files"
    directory.mkdir(mode=0o700, exist_ok=True)
    written = {}
    for target, content in spec.files:
        path = directory / target.strip("/").replace("/", "-")
        path.write_text(content)
        path.chmod(0o644)
        written[target] = str(path)
    return written


def _device_numbers(devices: Sequence[Mount]) -> dict[str, tuple[int, int]]:
    """(major, minor) of each source that is a character device; plain files (the virtual
    GPUs of the tests) are bound instead."""
    found = {}
    for mount in devices:
        info = os.stat(mount.source)
        if stat.S_ISCHR(info.st_mode):
            found[mount.source] = (os.major(info.st_rdev), os.minor(info.st_rdev))
    return found


def _overlay(rootfs: str, bundle: Path, stage: Stage, name: str) -> str:
    """The container's root: the image's rootfs under an upper layer on the stage (tmpfs, in
    this process's own mount namespace), where the runtime's mount points go."""
    if any(c in rootfs for c in ",:\\"):
        raise SandboxRefused(f"the image's path cannot be mounted (it has , : or \\): {rootfs}")
    layer = stage.root / f"overlay-{name}"
    upper, work = layer / "upper", layer / "work"
    for directory in (upper, work):
        directory.mkdir(parents=True, exist_ok=True)
    upper.chmod(stat.S_IMODE(os.stat(rootfs).st_mode))  # the root's own mode: searchable
    merged = bundle / "rootfs"
    merged.mkdir(mode=0o700, exist_ok=True)
    _mount("overlay", str(merged), "overlay", f"lowerdir={rootfs},upperdir={upper},workdir={work}")
    return str(merged)


def _mount(source: str, target: str, kind: str, options: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    flags = ctypes.c_ulong(0)
    if libc.mount(source.encode(), target.encode(), kind.encode(), flags, options.encode()):
        errno = ctypes.get_errno()
        raise OSError(errno, f"mounting the image's {kind}: {os.strerror(errno)}")


def _enter(join: Sequence[str], cpus: Sequence[int]) -> Callable[[], None]:
    """What the runtime's process does before exec: enter the control group and the CPUs.
    No identity switch: the runtime needs root, and drops it for the container itself."""

    def enter() -> None:
        enter_group(join, cpus)

    return enter


def _wait_for_pid(proc: subprocess.Popen[bytes], pid_file: Path) -> int | None:
    """tini's pid, once the runtime has started the container; None if the runtime ended
    first (its complaint is in the log) or the container did not come up in time."""
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text())
        if proc.poll() is not None:
            return None
        time.sleep(0.01)
    return None
