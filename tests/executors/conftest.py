"""Fixtures for the local executor tests: real supervisors, real jobs, and a teardown that leaves
no process of theirs behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from aifactory.executors.local.jobdir import read_json

SUPERVISOR_MODULE = "aifactory.executors.local.supervisor"


def gone(pid: int) -> bool:
    """True when `pid` no longer runs. A child of this process counts once it can be reaped (its
    zombie may show before that); any other process once it is a zombie or has disappeared."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        pass  # not a child of ours
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout_s: float = 5.0) -> list[int]:
    """Wait until every pid is gone; return those still running at the deadline."""
    deadline = time.monotonic() + timeout_s
    alive = [pid for pid in pids if not gone(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [pid for pid in alive if not gone(pid)]
    return alive


def supervisors_under(jobs_dir: Path) -> list[int]:
    """Pids of the supervisors this test process started for job dirs under `jobs_dir` that are
    not gone yet. A child of ours in the middle of exiting has no command line (nor has a
    zombie), so any such child counts too: it is gone an instant later."""
    found = []
    for child in psutil.Process().children():
        try:
            cmdline = child.cmdline()
        except psutil.ZombieProcess:
            cmdline = []
        except psutil.NoSuchProcess:
            continue
        ours = SUPERVISOR_MODULE in cmdline and cmdline[-1].startswith(str(jobs_dir))
        if ours or not cmdline:
            found.append(child.pid)
    return [pid for pid in found if not gone(pid)]


def cleanup_jobs(jobs_dir: Path) -> None:
    """Stop every supervisor and job started under `jobs_dir`, gently first, then by force."""
    if not jobs_dir.exists():
        return
    for launch in jobs_dir.rglob("launch.json"):  # one per attempt
        if not (launch.parent / "exit.json").exists():
            (launch.parent / "cancel").touch()  # a live supervisor stops its job and exits
    for pid in wait_gone(supervisors_under(jobs_dir), timeout_s=10.0):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # A job whose supervisor is gone without an exit record (LOST) runs on, unsupervised.
    for started in jobs_dir.rglob("started.json"):
        record = read_json(started)
        if record is None or (started.parent / "exit.json").exists():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(record["pid"]), signal.SIGKILL)
    wait_gone(supervisors_under(jobs_dir))


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "jobs"
    yield path
    cleanup_jobs(path)


@pytest.fixture
def make_executor(jobs_dir: Path) -> Iterator[Callable[..., LocalExecutor]]:
    """A fresh LocalExecutor on the test's jobs dir (another one plays a restarted control
    plane). Each is kept until its supervisors are gone, so none is dropped with one running."""
    made: list[LocalExecutor] = []

    def make(**overrides: object) -> LocalExecutor:
        settings: dict[str, object] = {
            "virtual_gpus": 4,
            "cpus": 4,
            "grace_s": 1.0,
            "workdir_roots": (jobs_dir.parent,),  # the test's own directory
        }
        settings.update(overrides)
        config = LocalConfig(jobs_dir=jobs_dir, **settings)  # type: ignore[arg-type]
        made.append(LocalExecutor(config))
        return made[-1]

    yield make
    cleanup_jobs(jobs_dir)
    for executor in made:
        executor.poll([])  # reaps its exited supervisors (Python 3.11 warns about unreaped ones)
    made.clear()


@pytest.fixture
def executor(make_executor: Callable[..., LocalExecutor]) -> LocalExecutor:
    return make_executor()
