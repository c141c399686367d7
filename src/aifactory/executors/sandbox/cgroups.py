"""The kernel's limits on one attempt: a control group per attempt, on cgroup v1 or v2.

Each attempt gets `aifactory/<facility key>/job-<id>-<attempt>` in every controller it uses:
memory (its memory, no swap beyond it; the kernel's OOM killer acts inside the group only),
pids (a fork bomb stops at `pids_max` tasks, threads included), cpuset (the CPU slots it was
given) and cpu accounting (CPU-seconds for the usage record). Every process of the job,
daemonised or not, is in the group, so "nothing of the job is left" is a question the kernel
answers: the group has no process (`pids()` is empty).

v1 is what older hosts (and these test machines) run; v2 is the unified hierarchy of modern
ones. `detect()` picks the one this host has, or None (no cgroup file system we may write: a
facility not running as root), in which case the supervisor falls back to its RSS watchdog and
the PID namespace alone.

Devices are not limited here: the sandbox's /dev holds only the job's own GPUs, and nobody in
it may make a device node (no CAP_MKNOD outside its user namespace), so a device cgroup would
add nothing the mount namespace does not already give.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ROOT = Path("/sys/fs/cgroup")
PREFIX = "aifactory"
KILL_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int | None  # None: unlimited (the node's)
    pids_max: int | None
    cpus: tuple[int, ...]  # real CPU numbers; empty: all of the parent's


class JobGroup(Protocol):
    name: str

    def create(self, limits: Limits) -> None: ...

    def join_files(self) -> list[str]:
        """The files a process writes "0" into to enter the group (before exec)."""
        ...

    def pids(self) -> list[int]: ...

    def oom_kills(self) -> int: ...

    def usage(self) -> dict[str, float]: ...

    def remove(self) -> None: ...


def group_name(facility_key: str, job_id: int, attempt: int) -> str:
    return f"{PREFIX}/{facility_key}/job-{job_id}-{attempt}"


def detect(root: Path = ROOT) -> str | None:
    """'v2', 'v1' or None: which cgroup file system this process can make groups in."""
    if (root / "cgroup.controllers").is_file():
        return "v2" if os.access(root, os.W_OK) else None
    if (root / "memory" / "memory.limit_in_bytes").is_file():
        return "v1" if os.access(root / "memory", os.W_OK) else None
    return None


def job_group(version: str, name: str, root: Path = ROOT) -> JobGroup:
    return CgroupV2(root, name) if version == "v2" else CgroupV1(root, name)


def kill_all(group: JobGroup, deadline_s: float = KILL_WAIT_S) -> list[int]:
    """SIGKILL every process in the group until none is left; the pids still there at the
    deadline (none, unless a process is stuck in the kernel)."""
    deadline = time.monotonic() + deadline_s
    while (left := group.pids()) and time.monotonic() < deadline:
        for pid in left:
            _kill_member(pid, group.name)
        time.sleep(0.01)
    return group.pids()


def _kill_member(pid: int, name: str) -> None:
    """SIGKILL `pid` through a pidfd taken while it is still in the group: a pid the kernel gave
    to another process since the group was read is left alone."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        with open(f"/proc/{pid}/cgroup") as found:
            if f"/{name}\n" in found.read():
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


class CgroupV1:
    CONTROLLERS = ("memory", "pids", "cpuset", "cpuacct")

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name

    def _dir(self, controller: str) -> Path:
        return self.root / controller / self.name

    def create(self, limits: Limits) -> None:
        for controller in self.CONTROLLERS:
            if controller == "cpuset":
                _make_cpusets(self.root / "cpuset", self.name)
            else:
                self._dir(controller).mkdir(parents=True, exist_ok=True)
        if limits.memory_bytes is not None:
            _write(self._dir("memory") / "memory.limit_in_bytes", limits.memory_bytes)
            with contextlib.suppress(OSError):  # absent without swap accounting
                _write(self._dir("memory") / "memory.memsw.limit_in_bytes", limits.memory_bytes)
        if limits.pids_max is not None:
            _write(self._dir("pids") / "pids.max", limits.pids_max)
        if limits.cpus:
            _write(self._dir("cpuset") / "cpuset.cpus", ",".join(map(str, limits.cpus)))

    def join_files(self) -> list[str]:
        return [str(self._dir(c) / "cgroup.procs") for c in self.CONTROLLERS]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for controller in ("pids", "memory"):
            found.update(_procs(self._dir(controller)))
        return sorted(found)

    def oom_kills(self) -> int:
        return _field(self._dir("memory") / "memory.oom_control", "oom_kill")

    def usage(self) -> dict[str, float]:
        found: dict[str, float] = {}
        cpu_ns = _number(self._dir("cpuacct") / "cpuacct.usage")
        if cpu_ns is not None:
            found["cpu_time_s"] = cpu_ns / 1e9
        peak = _number(self._dir("memory") / "memory.max_usage_in_bytes")
        if peak is not None:
            found["peak_memory_mb"] = peak / (1024 * 1024)
        return found

    def remove(self) -> None:
        for controller in self.CONTROLLERS:
            with contextlib.suppress(FileNotFoundError, OSError):
                self._dir(controller).rmdir()


class CgroupV2:
    CONTROLLERS = ("memory", "pids", "cpuset", "cpu")

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name

    @property
    def _dir(self) -> Path:
        return self.root / self.name

    def create(self, limits: Limits) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._delegate()
        if limits.memory_bytes is not None:
            _write(self._dir / "memory.max", limits.memory_bytes)
            with contextlib.suppress(OSError):
                _write(self._dir / "memory.swap.max", 0)
        if limits.pids_max is not None:
            _write(self._dir / "pids.max", limits.pids_max)
        if limits.cpus:
            with contextlib.suppress(OSError):  # cpuset not delegated here: affinity still holds
                _write(self._dir / "cpuset.cpus", ",".join(map(str, limits.cpus)))

    def _delegate(self) -> None:
        """Turn the controllers on for every level above the job's group (v2 needs each parent
        to hand them down in cgroup.subtree_control)."""
        parents = Path(self.name).parents  # the job's group's, nearest first, then "."
        for level in reversed([self.root / p for p in parents]):
            available = (level / "cgroup.controllers").read_text().split()
            wanted = " ".join(f"+{c}" for c in self.CONTROLLERS if c in available)
            if wanted:
                with contextlib.suppress(OSError):
                    _write(level / "cgroup.subtree_control", wanted)

    def join_files(self) -> list[str]:
        return [str(self._dir / "cgroup.procs")]

    def pids(self) -> list[int]:
        return sorted(_procs(self._dir))

    def oom_kills(self) -> int:
        return _field(self._dir / "memory.events", "oom_kill")

    def usage(self) -> dict[str, float]:
        found: dict[str, float] = {}
        cpu_us = _field(self._dir / "cpu.stat", "usage_usec", default=-1)
        if cpu_us >= 0:
            found["cpu_time_s"] = cpu_us / 1e6
        peak = _number(self._dir / "memory.peak")
        if peak is not None:
            found["peak_memory_mb"] = peak / (1024 * 1024)
        return found

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self._dir.rmdir()


def _make_cpusets(controller_root: Path, name: str) -> None:
    """v1 cpusets start empty: each new level takes its parent's CPUs and memory nodes."""
    level = controller_root
    for part in Path(name).parts:
        child = level / part
        if not child.exists():
            child.mkdir()
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (child / knob).write_text((level / knob).read_text())
        level = child


def _write(path: Path, value: object) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _procs(directory: Path) -> list[int]:
    try:
        text = (directory / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(line) for line in text.split() if line.isdigit()]


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _field(path: Path, key: str, default: int = 0) -> int:
    """`key N` from a flat keyed file (memory.events, memory.oom_control, cpu.stat)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return default
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return default
