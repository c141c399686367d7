"""Launching real jobs on the local executor and waiting on what it observes of them."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Container, Mapping, Sequence
from pathlib import Path

import psutil
import pytest

from aifactory.executors.base import Attempt, Launch, NodeSlice, Observation, Phase
from aifactory.executors.local.executor import LocalExecutor
from aifactory.executors.local.jobdir import read_json

PY = sys.executable
MB = 1024 * 1024

# Attempt 1 notes it ran, says it is up and waits to be stopped, noting the SIGTERM it gets;
# any later attempt notes it ran, finds what attempt 1 left in the working directory and ends.
RESUMABLE_JOB = """
import os, pathlib, signal, sys, time
attempt = os.environ["AIFACTORY_ATTEMPT"]
with open(sys.argv[1], "a") as runs:
    runs.write(attempt + "\\n")
if attempt != "1":
    print("resumed from", pathlib.Path("checkpoint").read_text(), flush=True)
    sys.exit(0)
pathlib.Path("checkpoint").write_text("step 7")
def stop(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
print("up", flush=True)
time.sleep(30)
"""


def at(job_id: int, attempt: int = 1) -> Attempt:
    return Attempt(job_id, attempt)


def launch(
    job_id: int,
    command: Sequence[str],
    *,
    attempt: int = 1,
    env: Mapping[str, str] | None = None,
    working_dir: str | None = None,
    time_limit_s: int = 30,
    gpu_ids: Sequence[str] = ("0",),
    cpu_ids: Sequence[int] = (0,),
    memory_mb: int = 1024,
    project_id: int = 1,
    datasets: Sequence[str] = (),
    network: str = "none",
) -> Launch:
    node_slice = NodeSlice(list(gpu_ids), list(cpu_ids), memory_mb)
    return Launch(
        at(job_id, attempt),
        command,
        env or {},
        working_dir,
        time_limit_s,
        {"node": node_slice},
        project=f"p{project_id}",
        project_id=project_id,
        datasets=tuple(datasets),
        network=network,
    )


def own_dir(executor: LocalExecutor, path: Path, project_id: int = 1) -> Path:
    """A directory of the project's identity: the only kind a job may name as its working
    directory (and so the place where a test and its job share files)."""
    path.mkdir(parents=True, exist_ok=True)
    identity = executor.identity(project_id)
    os.chown(path, identity.uid, identity.gid)
    return path


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def seen(executor: LocalExecutor, job_id: int, attempt: int = 1) -> Observation:
    return executor.poll([at(job_id, attempt)])[at(job_id, attempt)]


def wait_phase(
    executor: LocalExecutor,
    job_id: int,
    phases: Container[Phase] = (Phase.EXITED,),
    timeout_s: float = 10.0,
    attempt: int = 1,
) -> Observation:
    deadline = time.monotonic() + timeout_s
    while True:
        observation = seen(executor, job_id, attempt)
        if observation.phase in phases:
            return observation
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {observation} after {timeout_s} s")
        time.sleep(0.02)


def run_to_exit(executor: LocalExecutor, job: Launch, timeout_s: float = 10.0) -> Observation:
    executor.start(job)
    return wait_phase(executor, job.job_id, timeout_s=timeout_s, attempt=job.attempt.number)


def wait_for_file(path: Path, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text().endswith("\n"):
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)
    return path.read_text()


def duration_s(observation: Observation) -> float:
    assert observation.started_at is not None
    assert observation.ended_at is not None
    return observation.ended_at - observation.started_at


def started_pid(executor: LocalExecutor, job_id: int, attempt: int = 1) -> int:
    record = read_json(executor.jobdir(at(job_id, attempt)).started)
    assert record is not None
    return int(record["pid"])


# --- outcomes -------------------------------------------------------------------------------


def wait_for_log(executor: LocalExecutor, job_id: int, text: str, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        path = executor.log_path(job_id)
        found = path.read_text() if path.exists() else ""
        if text in found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} not in job {job_id}'s log within {timeout_s} s: {found!r}")
        time.sleep(0.02)


def pids_of(uid: int, name: str) -> list[int]:
    """Processes of `uid` named `name`, as the host sees them (jobs' pids outside their
    namespaces)."""
    found = []
    for proc in psutil.process_iter(["uids", "name"]):
        uids, proc_name = proc.info["uids"], proc.info["name"]
        if uids is not None and uids.real == uid and proc_name == name:
            found.append(proc.pid)
    return found


def wait_for_pids(uid: int, name: str, count: int, timeout_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while len(found := pids_of(uid, name)) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} {name} processes of uid {uid} did not appear: {found}")
        time.sleep(0.02)
    return found
