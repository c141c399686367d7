"""Fixtures for the tests on the real test cluster: a client for it, and a helper that submits
jobs, waits for their states, and cancels whatever a test left running."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aifactory.executors.base import Attempt, Launch, NodeSlice
from aifactory.executors.slurm.commands import SlurmClient, SlurmConfig
from aifactory.executors.slurm.executor import SlurmExecutor, SlurmExecutorConfig
from aifactory.executors.slurm.parse import SlurmJob
from tests.slurm_cluster import SlurmCluster

ENDED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY"})


@dataclass
class Jobs:
    """Submits a test's jobs (output in its tmp dir) and waits on them through the client."""

    client: SlurmClient
    cluster: SlurmCluster
    workdir: Path
    submitted: list[int] = field(default_factory=list)

    def submit(self, script: str, *options: str) -> int:
        job_id = self.client.submit(
            script, [f"--chdir={self.workdir}", f"--output={self.workdir}/%j.out", *options]
        )
        self.submitted.append(job_id)
        return job_id

    def output(self, job_id: int) -> str:
        return (self.workdir / f"{job_id}.out").read_text()

    def wait(
        self,
        job_id: int,
        states: Iterable[str],
        timeout_s: float = 30.0,
        reason: str | None = None,
    ) -> SlurmJob:
        """Poll squeue until the job is in one of `states` (and has `reason`, if given)."""
        wanted = set(states)
        deadline = time.monotonic() + timeout_s
        while True:
            (job,) = self.client.queue([job_id])
            if job.state in wanted and reason in (None, job.reason):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} is {job.state} ({job.reason}), not {sorted(wanted)} after "
                    f"{timeout_s:.0f} s\n{self.cluster.logs(10)}"
                )
            time.sleep(0.2)

    def wait_ended(self, job_id: int, timeout_s: float = 30.0) -> SlurmJob:
        return self.wait(job_id, ENDED, timeout_s)

    def wait_file(self, path: Path, timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        while not path.exists() or not path.read_text():
            assert time.monotonic() < deadline, f"{path.name} never appeared"
            time.sleep(0.1)
        return path.read_text()

    def cancel_left_over(self) -> None:
        active = [j.id for j in self.client.queue(self.submitted) if j.state not in ENDED]
        for job_id in active:
            self.client.cancel(job_id)
        for job_id in active:
            self.wait_ended(job_id)


@pytest.fixture(scope="session")
def slurm_client(slurm_cluster: SlurmCluster) -> SlurmClient:
    return SlurmClient(SlurmConfig(conf=str(slurm_cluster.conf)))


@pytest.fixture(scope="session")
def over_time_job(slurm_client: SlurmClient) -> Iterator[int]:
    """A job with a one-minute limit on n2, submitted with the session's first job so that its
    60 to 90 s overlap the other tests (test_time_limit.py, which runs late, waits for it)."""
    job_id = slurm_client.submit(
        "#!/bin/sh\nsleep 600\n", ["--time=1", "--nodelist=n2", "--output=/dev/null"]
    )
    yield job_id
    slurm_client.cancel(job_id)


@dataclass(frozen=True)
class OverTime:
    """An attempt the Slurm executor started with a one-minute limit (see over_time_job)."""

    executor: SlurmExecutor
    attempt: Attempt
    checkpoint: Path  # the job writes it when the time-limit warning (SIGTERM) comes


@pytest.fixture(scope="session")
def over_time_attempt(slurm_client: SlurmClient, shared_base: Path) -> Iterator[OverTime]:
    """Started with the session's first executor test, checked by test_time_limit.py."""
    root = shared_base / "over-time"
    executor = SlurmExecutor(
        SlurmExecutorConfig(jobs_dir=root / "jobs", site="NL", grace_s=5), slurm_client
    )
    executor.inventory()
    attempt = Attempt(99_999, 1)
    checkpoint = executor.work(attempt.job_id) / "checkpoint"  # its own directory
    script = "trap 'echo warned > checkpoint' TERM; for i in $(seq 3000); do sleep 0.1; done"
    executor.start(
        Launch(
            attempt=attempt,
            command=["bash", "-c", script],
            env={},
            working_dir=None,
            time_limit_s=60,
            placement={"n2": NodeSlice([], [0], 256)},
        )
    )
    yield OverTime(executor, attempt, checkpoint)
    executor.cancel(attempt)


@pytest.fixture
def jobs(
    slurm_client: SlurmClient, slurm_cluster: SlurmCluster, tmp_path: Path, over_time_job: int
) -> Iterator[Jobs]:
    made = Jobs(slurm_client, slurm_cluster, tmp_path)
    yield made
    made.cancel_left_over()
