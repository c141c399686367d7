"""The per-attempt supervisor: `python -m aifactory.executors.local.supervisor ATTEMPT_DIR`.

It runs in its own session, so the control plane can die and come back while jobs go on. It
spawns the command once (at most once, see `jobdir`), in its own process group, with its GPUs
(CUDA_VISIBLE_DEVICES), CPU affinity and an RSS watchdog for memory; enforces the time limit
(SIGTERM, grace period, SIGKILL); honours a cancel or a preemption the same way; and records the
outcome in `exit.json`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from aifactory.executors.local import gpus
from aifactory.executors.local.jobdir import JobDir, read_json, write_json

POLL_S = 0.1
MEMORY_CHECK_S = 0.5
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
        self.stop_reason: tuple[str, str] | None = None  # (outcome, reason)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        self.stop_reason = self.stop_reason or ("cancelled", "the supervisor was told to stop")

    def run(self) -> dict[str, Any]:
        with open(self.jobdir.log, "ab", buffering=0) as log:
            energy_before = gpus.energy_mj(self._real_gpu_ids())
            started_at = time.time()
            try:
                proc = self._spawn(log)
            except (OSError, ValueError, IndexError) as exc:  # e.g. missing, not executable
                message = _spawn_error(self.launch["command"], self.launch.get("working_dir"), exc)
                log.write(f"aifactory: {message}\n".encode())
                return _exit_record("failed", None, message, started_at, {})
            write_json(self.jobdir.started, {"pid": proc.pid, "started_at": started_at})
            code = self._watch(proc, started_at)
            _kill_group(proc.pid, signal.SIGKILL)  # nothing of the job outlives it
            usage = self._usage(energy_before, started_at)
            outcome, reason = self.stop_reason or _outcome_of(code)
            if self.stop_reason:
                log.write(f"aifactory: {reason}\n".encode())
            return _exit_record(outcome, code, reason, started_at, usage)

    def _spawn(self, log: BinaryIO) -> subprocess.Popen[bytes]:
        cpus = set(self.launch["cpu_affinity"])
        return subprocess.Popen(
            self.launch["command"],
            cwd=self.launch.get("working_dir") or None,
            env=self.launch["env"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )

    def _watch(self, proc: subprocess.Popen[bytes], started_at: float) -> int:
        deadline = started_at + float(self.launch["time_limit_s"])
        next_memory_check = 0.0
        while True:
            try:
                return proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
            now = time.time()
            if self.stop_reason is None:
                self.stop_reason = _stop_asked(self.jobdir)
            if self.stop_reason is None and now >= deadline:
                limit = self.launch["time_limit_s"]
                self.stop_reason = ("timeout", f"time limit of {limit} s reached")
            if self.stop_reason is None and now >= next_memory_check:
                next_memory_check = now + MEMORY_CHECK_S
                self.stop_reason = self._memory_verdict(proc.pid)
            if self.stop_reason is not None:
                return _terminate(proc, float(self.launch["grace_s"]))

    def _memory_verdict(self, pid: int) -> tuple[str, str] | None:
        limit_mb = int(self.launch["memory_mb"])
        used_mb = _tree_rss(pid) // (1024 * 1024)
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


def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> int:
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return int(total)


def _outcome_of(code: int) -> tuple[str, str]:
    if code == 0:
        return ("succeeded", "exited with code 0")
    if code < 0:
        return ("failed", f"killed by signal {signal.Signals(-code).name}")
    return ("failed", f"exited with code {code}")


def _spawn_error(command: list[str], working_dir: str | None, exc: Exception) -> str:
    if not command:
        return "the command is empty"
    if working_dir and not os.path.isdir(working_dir):
        return f"working directory does not exist: {working_dir}"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {command[0]}"
    if isinstance(exc, PermissionError):
        return f"command is not executable: {command[0]}"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"could not start {command[0]}: {detail}"


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
