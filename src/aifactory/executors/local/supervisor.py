"""The per-attempt supervisor: `python -m aifactory.executors.local.supervisor ATTEMPT_DIR`.

It runs in its own session, so the control plane can die and come back while jobs go on. It
spawns the command once (at most once, see `jobdir`) in the attempt's sandbox
(executors.sandbox): under the project's identity, in namespaces of its own, in a control
group that holds its memory, process count and CPUs. It enforces the time limit (SIGTERM to
the command, grace period, SIGKILL to the whole sandbox); honours a cancel or a preemption the
same way; and records the outcome in `exit.json` — only once nothing of the job is left, so its
GPUs and CPUs are never handed on while a process of it runs. If the supervisor itself dies,
the sandbox dies with it (bubblewrap's --die-with-parent); a container does not, and the
executor kills what is left of it through its control group.

A job in an image runs in a container instead (`sandbox.container`, with the OCI runtime the
launch record names), from the same spec, in the same control group, stopped the same way.

Without a control group it may write (a facility not running as root) memory falls back to an
RSS watchdog over the sandbox's processes. Either way it samples what the attempt uses while it
runs (`sampling`: memory, CPU time, GPU utilisation and memory) for its efficiency report.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from aifactory.executors.local import gpus
from aifactory.executors.local.jobdir import JobDir, read_json, write_json
from aifactory.executors.local.sampling import SAMPLE_S, Sampler, tree
from aifactory.executors.sandbox import cgroups
from aifactory.executors.sandbox.container import spawn_container, startup_error
from aifactory.executors.sandbox.image import ImageError, read_image
from aifactory.executors.sandbox.launcher import (
    Sandboxed,
    SandboxRefused,
    spawn,
    spawn_unsandboxed,
)
from aifactory.executors.sandbox.spec import from_record
from aifactory.executors.sandbox.stage import Stage

POLL_S = 0.1
LOCK_TRIES = 50  # the control plane probes the lock for an instant; wait that out


def main(argv: list[str]) -> int:
    jobdir = JobDir(Path(argv[1]))
    lock = open(jobdir.lock, "a+b")  # noqa: SIM115 - held for the life of the process
    if not _acquire(lock):
        return 0  # another supervisor has this job
    if jobdir.attempt.exists() or jobdir.exit.exists():
        return 0  # spawned before: never run a job twice
    launch = read_json(jobdir.launch)
    if launch is None:
        return 2
    write_json(jobdir.attempt, {"supervisor_pid": os.getpid(), "at": time.time()})
    stopped = _stop_asked(jobdir)
    if stopped is not None:
        reason = f"{stopped[0]} before it started"
        write_json(jobdir.exit, _exit_record(stopped[0], None, reason, time.time(), {}))
        return 0
    refused = launch.get("refused")
    if refused is not None:
        with open(jobdir.log, "ab") as log:
            log.write(f"aifactory: {refused}\n".encode())
        write_json(jobdir.exit, _exit_record("failed", None, str(refused), time.time(), {}))
        return 0
    write_json(jobdir.exit, Supervisor(jobdir, launch).run())
    return 0


def _stop_asked(jobdir: JobDir) -> tuple[str, str] | None:
    """(outcome, reason) when a stop was asked for. A cancel wins over a preemption: a user
    who cancels a job being preempted wants it ended, not requeued."""
    if jobdir.cancel.exists():
        return ("cancelled", "cancelled at the user's request")
    if jobdir.preempt.exists():
        return ("preempted", "preempted: stopped to make room; it will run again")
    return None


def _acquire(lock: BinaryIO) -> bool:
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.02)
    return False


class Supervisor:
    def __init__(self, jobdir: JobDir, launch: dict[str, Any]) -> None:
        self.jobdir = jobdir
        self.launch = launch
        self.gpu_ids: list[str] = launch["gpu_ids"]
        self.spec = from_record(launch["sandbox"])
        self.sandboxed = bool(launch.get("sandboxed", True))
        self.group = _job_group(launch) if self.sandboxed else None
        self.oom_kills = 0
        self.sampler = Sampler(gpus.reader(self._real_gpu_ids()))
        self.stop_reason: tuple[str, str] | None = None  # (outcome, reason)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        self.stop_reason = self.stop_reason or ("cancelled", "the supervisor was told to stop")

    def run(self) -> dict[str, Any]:
        with open(self.jobdir.log, "ab", buffering=0) as log:
            energy_before = gpus.energy_mj(self._real_gpu_ids())
            started_at = time.time()
            reaped_before = _reaped_cpu_s()
            try:
                sandbox = self._spawn(log)
            except Exception as exc:  # whatever it is, the attempt failed so
                refused = isinstance(exc, SandboxRefused | ImageError)
                message = str(exc) if refused else _setup_error(exc)
                log.write(f"aifactory: {message}\n".encode())
                self._clean_up()
                self.sampler.gpus.close()
                return _exit_record("failed", None, message, started_at, {})
            write_json(
                self.jobdir.started,
                {"pid": sandbox.proc.pid, "init_pid": sandbox.init_pid, "started_at": started_at},
            )
            code = self._watch(sandbox, started_at)
            self.sampler.add_cpu_time(_reaped_cpu_s() - reaped_before)
            self.sampler.gpus.close()
            # the control group's exact CPU time, where there is one, wins over the sampled
            usage = {
                **self._usage(energy_before, started_at),
                **self.sampler.figures(),
                **self._clean_up(),
            }
            outcome, reason, recorded = self._result(code)
            if self.stop_reason:
                log.write(f"aifactory: {reason}\n".encode())
            return _exit_record(outcome, recorded, reason, started_at, usage)

    def _result(self, code: int) -> tuple[str, str, int | None]:
        """(outcome, reason, exit code to record): a stop asked for wins; the sandbox's own
        complaint (bubblewrap's; the runtime's or tini's) means the command never ran (no exit
        code of its own)."""
        if self.stop_reason is not None:
            return (*self.stop_reason, code)
        never_ran = self._never_ran(code)
        if never_ran is not None:
            return ("failed", never_ran, None)
        return (*self._outcome(code), code)

    def _never_ran(self, code: int) -> str | None:
        command = self.launch["command"]
        if self.launch.get("image") is not None:
            return startup_error(_last_line(self.jobdir.log), command) if code != 0 else None
        return _sandbox_error(self.jobdir.log, command) if code == 1 else None

    def _spawn(self, log: BinaryIO) -> Sandboxed:
        if not self.sandboxed:
            return spawn_unsandboxed(
                self.launch["command"], env=self.spec.env, cwd=self.spec.cwd, log=log
            )
        if self.group is not None:
            self.group.create(
                cgroups.Limits(
                    memory_bytes=_memory_bytes(int(self.launch["memory_mb"])),
                    pids_max=int(self.launch.get("pids_max") or 0) or None,
                    cpus=tuple(self.launch["cpu_affinity"]),
                )
            )
        stage = Stage.enter() if os.geteuid() == 0 else None
        if self.launch.get("image") is not None:
            return self._spawn_container(log, stage)
        return spawn(
            self.spec,
            self.launch["command"],
            log=log,
            join=self.group.join_files() if self.group is not None else (),
            cpus=self.launch["cpu_affinity"],
            stage=stage,
        )

    def _spawn_container(self, log: BinaryIO, stage: Stage | None) -> Sandboxed:
        """The job in its image; the image's own command where the job names none."""
        if stage is None:
            raise SandboxRefused("jobs in images need a facility that runs as root")
        wanted = self.launch["image"]
        image = read_image(Path(wanted["dir"]))
        if image.digest != wanted["digest"]:
            raise ImageError(f"the image in {wanted['dir']} is not {wanted['digest']}")
        return spawn_container(
            self.spec,
            self.launch["command"] or [*image.entrypoint, *image.cmd],
            log=log,
            bundle=self.jobdir.root / "container",
            rootfs=str(image.rootfs),
            image_env=image.env,
            join=self.group.join_files() if self.group is not None else (),
            cpus=self.launch["cpu_affinity"],
            cgroups_path=f"/{self.group.name}" if self.group is not None else None,
            runtime=str(self.launch["runtime"]),
            stage=stage,
            name=str(self.launch["container"]),
        )

    def _clean_up(self) -> dict[str, float]:
        """Nothing of the job left (every process of its group killed), its group's figures
        kept, the group and the attempt's /tmp removed."""
        usage: dict[str, float] = {}
        if self.group is not None:
            cgroups.kill_all(self.group)
            usage = self.group.usage()
            self.oom_kills = self.group.oom_kills()
            self.group.remove()
        shutil.rmtree(self.jobdir.tmp, ignore_errors=True)
        return usage

    def _outcome(self, code: int) -> tuple[str, str]:
        if self.oom_kills:
            limit = self.launch["memory_mb"]
            return ("failed", f"out of memory: the kernel stopped it at its limit of {limit} MB")
        return _outcome_of(code)

    def _watch(self, sandbox: Sandboxed, started_at: float) -> int:
        deadline = started_at + float(self.launch["time_limit_s"])
        next_sample = 0.0
        while True:
            try:
                return sandbox.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
            now = time.time()
            if self.stop_reason is None:
                self.stop_reason = _stop_asked(self.jobdir)
            if self.stop_reason is None and now >= deadline:
                limit = self.launch["time_limit_s"]
                self.stop_reason = ("timeout", f"time limit of {limit} s reached")
            if now >= next_sample:
                next_sample = now + SAMPLE_S
                self.sampler.take(self._processes(sandbox))
                if self.stop_reason is None and self.group is None:
                    self.stop_reason = self._memory_verdict()
            if self.stop_reason is not None:
                return _terminate(sandbox, float(self.launch["grace_s"]))

    def _processes(self, sandbox: Sandboxed) -> list[int]:
        """Every process of the job: its control group's (daemons too), else the sandbox's
        tree."""
        return self.group.pids() if self.group is not None else tree(sandbox.proc.pid)

    def _memory_verdict(self) -> tuple[str, str] | None:
        """The watchdog, where no memory control group holds the job (on the latest sample)."""
        limit_mb = int(self.launch["memory_mb"])
        used_mb = int(self.sampler.latest_rss_mb)
        if limit_mb > 0 and used_mb > limit_mb:
            return ("failed", f"out of memory: used {used_mb} MB, limit {limit_mb} MB")
        return None

    def _real_gpu_ids(self) -> list[str]:
        return [g for g in self.gpu_ids if g.startswith("GPU-")]

    def _usage(self, energy_before: dict[str, int], started_at: float) -> dict[str, float]:
        usage = {"wall_s": time.time() - started_at}
        after = gpus.energy_mj(list(energy_before))
        if after:
            joules = sum(after[u] - energy_before[u] for u in after if u in energy_before) / 1000
            usage["gpu_energy_j"] = joules
        return usage


def _job_group(launch: dict[str, Any]) -> cgroups.JobGroup | None:
    version = cgroups.detect()
    name = launch.get("cgroup")
    if version is None or not isinstance(name, str):
        return None
    return cgroups.job_group(version, name)


def _memory_bytes(memory_mb: int) -> int | None:
    return memory_mb * 1024 * 1024 if memory_mb > 0 else None


def _terminate(sandbox: Sandboxed, grace_s: float) -> int:
    sandbox.terminate()
    try:
        return sandbox.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        sandbox.kill()
        return sandbox.wait()


def _reaped_cpu_s() -> float:
    """The CPU time of every child this process has waited for, theirs included: once the
    sandbox is reaped, all of the job that was reaped in turn."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _outcome_of(code: int) -> tuple[str, str]:
    """bubblewrap passes the command's code on, 128 + N for a command killed by signal N."""
    if code == 0:
        return ("succeeded", "exited with code 0")
    signum = -code if code < 0 else code - 128
    if code < 0 or (code > 128 and signum in _SIGNALS):
        return ("failed", f"killed by signal {_SIGNALS[signum]} (exit code {code})")
    return ("failed", f"exited with code {code}")


_SIGNALS = {s.value: s.name for s in signal.Signals}
_EXEC_FAILED = re.compile(r"^bwrap: execvp (.+): (.+)$")


def _sandbox_error(log: Path, command: list[str]) -> str | None:
    """The reason, when the last line of the log is bubblewrap's own complaint (the sandbox
    could not be made, or the command not started in it); None when the job itself ended 1."""
    last = _last_line(log)
    if not last.startswith("bwrap: "):
        return None
    found = _EXEC_FAILED.match(last)
    if found is not None and found[2] == "No such file or directory":
        return f"command not found: {command[0] if command else found[1]}"
    if found is not None and found[2] == "Permission denied":
        return f"command is not executable: {command[0] if command else found[1]}"
    return f"the sandbox could not be set up: {last.removeprefix('bwrap: ')}"


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 4096))
        lines = handle.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""
    return ""


def _setup_error(exc: Exception) -> str:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"the sandbox could not be set up: {detail}"


def _exit_record(
    outcome: str, code: int | None, reason: str, started_at: float, usage: dict[str, float]
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "exit_code": code,
        "reason": reason,
        "started_at": started_at,
        "ended_at": time.time(),
        "usage": usage,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv))
