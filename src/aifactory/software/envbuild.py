"""Building a Python environment (a venv) from the facility's package registry, in a sandbox.

pip runs untrusted code (an sdist's build backend, its setup.py), so a build runs as the
identity it is given (never the facility's) inside one bubblewrap sandbox (executors.sandbox)
that sees the system's software read-only, the facility's Python (whose pip does the work), the
interpreter the environment is made from, the environment's own directory and a private /tmp —
read-write — and, because it has to reach the registry, the network. Never the facility's data
directory, database or configuration: they are not mounted, so for the build they do not exist.

Layout, under `<software_dir>/envs/`:
- `<key>/`: the environment (bin/python, lib/pythonX.Y/site-packages, pyvenv.cfg) and
  `aifactory-env.json` (`MARKER`), written last: an environment without it is incomplete
  (a build that crashed) and is removed before the next build;
- `.<key>.build/`: the build's /tmp (the requirements file, pip's cache), gone
  when the build ends.

Invariants:
- The build's processes end with it (its PID namespace), and with the facility: the runner
  dies with the thread that started it, and the sandbox with the runner.
- Everything the identity wrote is judged without following links: the tree is handed back to
  the facility (owner root where the facility is root; directories 0555, files a-w and readable
  by all, set-id bits gone, anything but files, directories and links removed) before the
  marker is written; the marker is the facility's own file.
- A failed build leaves no environment directory; its log stays.

Where the facility is root, the sandbox's mounts are placed on a stage
(executors.sandbox.stage) in a mount namespace of the caller's own; a thread of the control
plane that entered one would stay in it, so a short-lived runner process does it instead
(`python -m aifactory.software.envbuild`, what to run on its stdin).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from aifactory.domain.environments import parse_python
from aifactory.domain.jobs import Network
from aifactory.executors.sandbox import cgroups
from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.launcher import SandboxRefused, spawn
from aifactory.executors.sandbox.software import Software
from aifactory.executors.sandbox.spec import (
    Access,
    Mount,
    SandboxSpec,
    facility_files,
    from_record,
    identity_env,
    to_record,
)
from aifactory.executors.sandbox.stage import Stage
from aifactory.software.layout import ENV_MARKER

MARKER = ENV_MARKER
HOSTNAME = "aifactory-build"
PIP_CONFIG = ("/etc/pip.conf", "/etc/xdg/pip")  # the site's pip configuration, if any
METADATA_LIMIT = 1024 * 1024  # of one package's METADATA: its headers come first
TAIL_LINES = 20
SETUP_FAILED = 125  # the runner's code when the sandbox could not be made
PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0
_PROBE = (
    "import json, platform, sys, sysconfig; print(json.dumps({"
    "'version': platform.python_version(), 'base_prefix': sys.base_prefix, "
    "'executable': getattr(sys, '_base_executable', sys.executable), "
    "'platform': sysconfig.get_platform()}))"
)


class BuildError(RuntimeError):
    """The environment could not be built; the message says why (pip's own words where pip
    failed)."""


@dataclass(frozen=True, slots=True)
class Interpreter:
    path: Path  # the real interpreter (not a venv's or a shim's link to it)
    version: str  # "3.11.7"
    base_prefix: Path  # what a job using the environment must see of it
    platform: str  # "linux-x86_64": part of the environment's key


@dataclass(frozen=True, slots=True)
class BuiltEnvironment:
    key: str  # the directory's name
    requirements: tuple[str, ...]
    python: str
    platform: str
    base_prefix: str
    index: str | None
    packages: tuple[dict[str, Any], ...]  # what pip installed, by name: the SBOM-like record
    size_bytes: int
    seconds: float
    built_at: datetime


@dataclass(frozen=True, slots=True)
class BuildLimits:
    """What one build may take of the control plane's host: a control group of its own, as a
    job's (memory without swap beyond it, tasks), where the host lets the facility make one."""

    key: str  # names the group: aifactory/builds/<key>
    memory_mb: int = 8192
    pids_max: int = 4096


# ---- the interpreter -----------------------------------------------------------------------


def find_python(version: str | None) -> Interpreter:
    """The interpreter for `version` ("3.11"): the one the facility runs on when it is that
    version (or None is given), else `python3.X` on the facility's PATH."""
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        wanted = parse_python(version) if version is not None else ours
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    if wanted == ours:
        return _ask(Path(sys.base_prefix) / "bin" / f"python{ours}")
    found = shutil.which(f"python{wanted}")
    if found is None:
        raise BuildError(f"Python {wanted} is not installed on this facility")
    return _ask(Path(found))


def _ask(path: Path) -> Interpreter:
    """The interpreter's own answer: a link or a pyenv shim leads to the real one."""
    try:
        done = subprocess.run(
            [str(path), "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30
        )
        answer = json.loads(done.stdout)
        return Interpreter(
            Path(answer["executable"]),
            str(answer["version"]),
            Path(answer["base_prefix"]),
            str(answer["platform"]),
        )
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"the interpreter {path} does not answer: {exc}") from None


# ---- the build -----------------------------------------------------------------------------


def build_environment(
    env_dir: Path,
    requirements: Sequence[str],
    *,
    interpreter: Interpreter,
    index: str | None,
    identity: Identity,
    software: Software,
    log: Path,
    timeout_s: float = 1800,
    find_links: Sequence[Path] = (),
    limits: BuildLimits | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BuiltEnvironment:
    """Build the environment `env_dir` (its name is its key) from `requirements` (canonical,
    see domain.environments) as `identity`, pip's output appended to `log`. An environment
    already complete there is returned as it is; an incomplete one is removed first."""
    found = read_environment(env_dir)
    if found is not None:
        return found
    scratch = env_dir.with_name(f".{env_dir.name}.build")
    for leftover in (env_dir, scratch):
        remove_tree(leftover)
    started = time.monotonic()
    env_dir.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    _owned_dir(env_dir, identity)
    _owned_dir(scratch, identity, content={"requirements.txt": "\n".join(requirements) + "\n"})
    spec = build_sandbox(
        env_dir,
        scratch,
        interpreter=interpreter,
        identity=identity,
        software=software,
        index=index,
        find_links=find_links,
    )
    try:
        command = build_command(env_dir, interpreter, index, find_links)
        _run(spec, command, log, timeout_s, limits or BuildLimits(env_dir.name))
        _drop_forged_markers(env_dir)  # before the seal makes whatever the build left root's
        size = _seal(env_dir)
        built = BuiltEnvironment(
            key=env_dir.name,
            requirements=tuple(requirements),
            python=interpreter.version,
            platform=interpreter.platform,
            base_prefix=str(interpreter.base_prefix),
            index=index,
            packages=installed(env_dir, interpreter.version),
            size_bytes=size,
            seconds=round(time.monotonic() - started, 3),
            built_at=now(),
        )
        _write_marker(env_dir, built)
    except BaseException:
        remove_tree(env_dir)
        raise
    finally:
        remove_tree(scratch)
    return built


def _run(
    spec: SandboxSpec, command: list[str], log: Path, timeout_s: float, limits: BuildLimits
) -> None:
    """Run the build; BuildError with pip's last words if it fails."""
    with open(log, "ab") as out:
        out.write(f"aifactory: building as {spec.identity.name}:\n{command[-1]}\n".encode())
        offset = out.tell()
    code = run_sandboxed(spec, command, log, timeout_s, limits)
    if code is None:
        message = f"the build took longer than {timeout_s:.0f} s and was stopped"
        with open(log, "ab") as out:
            out.write(f"aifactory: {message}\n".encode())
        raise BuildError(message)
    if code != 0:
        raise BuildError(_failure(code, log, offset))


def build_sandbox(
    env_dir: Path,
    scratch: Path,
    *,
    interpreter: Interpreter,
    identity: Identity,
    software: Software,
    index: str | None,
    find_links: Sequence[Path] = (),
) -> SandboxSpec:
    """The build's world: software read-only, the environment and its /tmp read-write, the
    network open; nothing else of the host, and nothing of the facility's. The registry's local
    parts (a file:// index, wheelhouses) are read-only."""
    mounts = [*software.for_network(Network.OPEN), *_interpreter_mount(interpreter, software)]
    local = [*find_links, *_index_dir(index)]
    mounts += [Mount(str(p), str(p), Access.READ, "package registry") for p in local]
    if index is None:  # pip's own configuration: the site's, never the facility user's
        mounts += [Mount(p, p, Access.READ) for p in PIP_CONFIG if os.path.exists(p)]
    return SandboxSpec(
        identity=identity,
        software=tuple(mounts),
        symlinks=software.symlinks,
        writable=(
            Mount(str(env_dir), str(env_dir), Access.WRITE, "environment"),
            Mount(str(scratch), "/tmp", Access.WRITE, "temporary directory"),
        ),
        datasets=(),
        devices=(),
        files=facility_files(identity, "/tmp", HOSTNAME, Network.OPEN),
        network=Network.OPEN,
        hostname=HOSTNAME,
        cwd="/tmp",
        env={**_pip_env(index), **identity_env(identity, "/tmp")},
    )


def _interpreter_mount(interpreter: Interpreter, software: Software) -> list[Mount]:
    prefix = interpreter.base_prefix
    if any(prefix.is_relative_to(m.source) for m in software.mounts):
        return []
    return [Mount(str(prefix), str(prefix), Access.READ)]


def _pip_env(index: str | None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PIP_CACHE_DIR": "/tmp/pip-cache"}
    if index is not None:  # the facility's registry and nothing else: no config adds another
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _index_dir(index: str | None) -> list[Path]:
    """A file:// index's directory on disk, as mirrors lay it out: the index (`…/simple`) and
    the files its pages link to beside it (`…/files`), so its parent."""
    if index is None or not index.startswith("file:///"):
        return []
    return [Path(index.removeprefix("file://")).parent]


def build_command(
    env_dir: Path, interpreter: Interpreter, index: str | None, find_links: Sequence[Path] = ()
) -> list[str]:
    """The build, as one shell script: make the venv and install into it with the facility's
    pip. What it holds is read afterwards from its packages' metadata (`installed`), never by
    running the environment: a package's .pth file runs with every start of its interpreter."""
    pip = [sys.executable, "-m", "pip", "--python", f"{env_dir}/bin/python"]
    quiet = ["--no-input", "--disable-pip-version-check"]
    install = [*pip, "install", *quiet, "--progress-bar", "off"]
    install += ["--index-url", index] if index is not None else []
    install += [arg for p in find_links for arg in ("--find-links", str(p))]
    script = [
        "set -eu",
        shlex.join([str(interpreter.path), "-m", "venv", "--without-pip", str(env_dir)]),
        shlex.join([*install, "-r", "/tmp/requirements.txt"]),
    ]
    return ["/bin/sh", "-c", "\n".join(script)]


def run_sandboxed(
    spec: SandboxSpec,
    command: list[str],
    log: Path,
    timeout_s: float,
    limits: BuildLimits | None = None,
) -> int | None:
    """Run `command` in `spec`'s sandbox through the runner; its exit code, None on timeout."""
    order = {
        "spec": to_record(spec),
        "command": command,
        "log": str(log),
        "parent": os.getpid(),
        "limits": dataclasses.asdict(limits or BuildLimits("build")),
    }
    with open(log, "ab") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_runner_env(),
        )
    try:
        runner.communicate(json.dumps(order).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(runner)
        return None
    except BaseException:
        _stop(runner)
        raise
    return runner.returncode


def _stop(runner: subprocess.Popen[bytes]) -> None:
    runner.terminate()  # the runner kills the sandbox, and the namespace goes with its init
    try:
        runner.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        runner.kill()  # and bubblewrap follows it (--die-with-parent)
        runner.wait()


def _runner_env() -> dict[str, str]:
    """What the runner needs to import aifactory, and nothing secret."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _failure(code: int, log: Path, offset: int) -> str:
    """What to tell the user: the last lines pip wrote (its error is there), not its noise."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    lines = [line.rstrip() for line in text.splitlines()]
    meaningful = [line for line in lines if line.strip() and not line.startswith("[notice]")]
    tail = "\n".join(meaningful[-TAIL_LINES:])
    return f"the environment could not be built (exit code {code}):\n{tail}"


# ---- what pip installed --------------------------------------------------------------------


def _drop_forged_markers(env_dir: Path) -> None:
    """A marker the build wrote itself (or half of one) goes: only the facility writes it."""
    for name in (MARKER, f".{MARKER}.partial"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(env_dir / name)
        if os.path.lexists(env_dir / name):
            remove_tree(env_dir / name)


def installed(env_dir: Path, python: str) -> tuple[dict[str, Any], ...]:
    """Every package the sealed environment holds, from its `*.dist-info/METADATA` files, read
    by the facility without following a link out of the environment and without running any of
    its code. Each field is plain text of bounded length, whatever a package wrote."""
    version = ".".join(python.split(".")[:2])
    try:
        site = _open_dir(None, str(env_dir))
        for part in ("lib", f"python{version}", "site-packages"):
            site = _open_dir(site, part)
    except OSError as exc:
        raise BuildError(f"the environment has no site-packages: {exc.strerror}") from None
    found = []
    try:
        for name in sorted(os.listdir(site)):
            if not name.endswith(".dist-info"):
                continue
            text = _metadata_text(site, name)
            if text is not None:
                found.append(_package(HeaderParser().parsestr(text)))
    finally:
        os.close(site)
    return tuple(sorted(found, key=lambda p: str(p["name"]).lower()))


def _open_dir(parent: int | None, name: str) -> int:
    """A directory, by a descriptor, never through a link; the parent's descriptor is closed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags) if parent is None else os.open(name, flags, dir_fd=parent)
    finally:
        if parent is not None:
            os.close(parent)


def _metadata_text(site: int, dist_info: str) -> str | None:
    try:
        directory = os.open(dist_info, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=site)
    except OSError:
        return None
    try:
        fd = os.open("METADATA", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    finally:
        os.close(directory)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(METADATA_LIMIT).decode("utf-8", errors="replace")


def _package(metadata: Message) -> dict[str, Any]:
    classifiers = [str(c) for c in metadata.get_all("Classifier") or []]
    licence = _text(metadata.get("License-Expression")) or _text(metadata.get("License"))
    if not licence or len(licence) > 200:  # some packages put the whole licence text there
        named = [c.rsplit(" :: ", 1)[-1] for c in classifiers if c.startswith("License ::")]
        licence = ", ".join(named)[:200] or (licence[:200] if licence else None)
    return {
        "name": _text(metadata.get("Name")) or "?",
        "version": _text(metadata.get("Version")) or "?",
        "license": licence,
        "summary": _text(metadata.get("Summary")),
        "requires_python": _text(metadata.get("Requires-Python")),
        "requires_dist": [_text(r) for r in (metadata.get_all("Requires-Dist") or [])][:500],
        "home_page": _text(metadata.get("Home-page")),
    }


def _text(value: object, limit: int = 500) -> str | None:
    """A header as plain text on one line, cut to `limit`; None when empty."""
    found = " ".join(str(value).split())[:limit] if value is not None else ""
    return found or None


# ---- the directory -------------------------------------------------------------------------


def read_environment(env_dir: Path) -> BuiltEnvironment | None:
    """The environment as its marker records it; None when it is incomplete (or not there).
    Only the facility's own marker counts: a build can write a file of that name too."""
    try:
        record = json.loads(_facilitys_file(env_dir / MARKER))
        return BuiltEnvironment(
            key=str(record["key"]),
            requirements=tuple(record["requirements"]),
            python=str(record["python"]),
            platform=str(record["platform"]),
            base_prefix=str(record["base_prefix"]),
            index=record["index"],
            packages=tuple(record["packages"]),
            size_bytes=int(record["size_bytes"]),
            seconds=float(record["seconds"]),
            built_at=datetime.fromisoformat(record["built_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _facilitys_file(path: Path) -> bytes:
    """The content of `path` if it is a plain file of the facility's (not a link), in a
    directory of the facility's; else OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
            raise OSError(f"{path} is not the facility's")
        if path.parent.lstat().st_uid != os.geteuid():
            raise OSError(f"{path.parent} is not the facility's")
        return handle.read()


def _write_marker(env_dir: Path, built: BuiltEnvironment) -> None:
    """The completeness marker, whole or not at all; then the directory itself is closed."""
    record = {
        "key": built.key,
        "requirements": list(built.requirements),
        "python": built.python,
        "platform": built.platform,
        "base_prefix": built.base_prefix,
        "index": built.index,
        "packages": list(built.packages),
        "size_bytes": built.size_bytes,
        "seconds": built.seconds,
        "built_at": built.built_at.isoformat(),
    }
    partial = env_dir / f".{MARKER}.partial"
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.chmod(0o444)
    partial.replace(env_dir / MARKER)
    env_dir.chmod(0o555)


def _owned_dir(path: Path, identity: Identity, content: dict[str, str] | None = None) -> None:
    """A new directory of the identity's, with `content` (written before it is handed over)."""
    path.mkdir(mode=0o700)
    for name, text in (content or {}).items():
        (path / name).write_text(text)
        (path / name).chmod(0o444)
    if identity.uid != os.geteuid():
        os.chown(path, identity.uid, identity.gid)


def _seal(env_dir: Path) -> int:
    """Hand everything the build wrote back to the facility, read-only; its size in bytes.
    Nothing is followed: each entry is judged by lstat and changed through its own descriptor
    (or, for a link, the link itself), so a link the build planted never points root
    elsewhere."""
    size = 0
    for _root, dirs, files, dir_fd in os.fwalk(env_dir, follow_symlinks=False):
        for name in (*dirs, *files):
            size += _seal_entry(name, dir_fd)
        _hand_over(dir_fd, 0o555)
    os.chmod(env_dir, 0o700)  # until the marker is in (a facility that is not root needs it)
    return size


def _seal_entry(name: str, dir_fd: int) -> int:
    found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(found.st_mode):
        return 0  # sealed when the walk reaches it
    if stat.S_ISLNK(found.st_mode):
        if os.geteuid() == 0:
            os.chown(name, 0, 0, dir_fd=dir_fd, follow_symlinks=False)
        return 0
    if not stat.S_ISREG(found.st_mode):  # a fifo or a socket has no place in an environment
        os.unlink(name, dir_fd=dir_fd)
        return 0
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        executable = found.st_mode & 0o111
        _hand_over(fd, 0o555 if executable else 0o444)
    finally:
        os.close(fd)
    return found.st_size


def _hand_over(fd: int, mode: int) -> None:
    if os.geteuid() == 0:
        os.fchown(fd, 0, 0)
    os.fchmod(fd, mode)


def remove_tree(path: Path) -> None:
    """Remove `path` and all below it, read-only parts included; links are not followed."""
    if not os.path.lexists(path):
        return
    if os.geteuid() != 0 and path.is_dir() and not path.is_symlink():
        for _root, _dirs, _files, dir_fd in os.fwalk(path, follow_symlinks=False):
            os.fchmod(dir_fd, 0o700)  # root needs no write right; anyone else does
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# ---- the runner: `python -m aifactory.software.envbuild` -----------------------------------


def _runner() -> int:
    """Start the sandbox from stdin's order (on a stage of its own, where root), wait for it,
    and pass its exit code on; SIGTERM kills the sandbox."""
    order = json.loads(sys.stdin.read())
    if not _dies_with_parent(order["parent"]):
        return SETUP_FAILED
    limits = BuildLimits(**order["limits"])
    group = _build_group(limits)
    with open(order["log"], "ab", buffering=0) as log:
        try:
            stage = Stage.enter() if os.geteuid() == 0 else None
            join = group.join_files() if group is not None else ()
            spec = from_record(order["spec"])
            sandbox = spawn(spec, order["command"], log=log, stage=stage, join=join)
        except (SandboxRefused, OSError) as exc:
            log.write(f"aifactory: the build's sandbox could not be set up: {exc}\n".encode())
            _end_group(group)
            return SETUP_FAILED
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sandbox.kill())
        code = sandbox.wait()
        if group is not None and group.oom_kills():
            limit = limits.memory_mb
            log.write(f"aifactory: the build ran out of memory (its limit: {limit} MB)\n".encode())
        _end_group(group)
    return 128 - code if code < 0 else code


def _build_group(limits: BuildLimits) -> cgroups.JobGroup | None:
    version = cgroups.detect()
    if version is None:
        return None
    group = cgroups.job_group(version, f"{cgroups.PREFIX}/builds/{limits.key}")
    group.create(
        cgroups.Limits(
            memory_bytes=limits.memory_mb * 1024 * 1024, pids_max=limits.pids_max, cpus=()
        )
    )
    return group


def _end_group(group: cgroups.JobGroup | None) -> None:
    """Nothing of the build left: every process of its group killed, the group removed."""
    if group is not None:
        cgroups.kill_all(group)
        group.remove()


def _dies_with_parent(parent: int) -> bool:
    """Tie the runner to the thread that started it, and so the sandbox to the runner
    (bubblewrap's --die-with-parent): a control plane that dies leaves no build running on
    into a directory nobody seals. False when the parent is gone already."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return os.getppid() == parent


if __name__ == "__main__":
    sys.exit(_runner())
