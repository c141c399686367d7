"""Efficiency from real sampled processes, end to end: the control loop runs real jobs on the
local executor (sandboxed), settles what the supervisor sampled into usage records, and the
efficiency report reads them — on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.efficiency import Efficiency, job_efficiency
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from tests.conftest import FakeClock
from tests.executors.conftest import cleanup_jobs
from tests.executors.test_local_sampling import BUSY, HOLD_200_MB, SLEEPING

pytestmark = pytest.mark.slow


@pytest.fixture
def loop(db: Database, tmp_path: Path) -> Iterator[ControlLoop]:
    clock = FakeClock()
    with db.session() as session:
        bootstrap(session, now=clock())
    config = LocalConfig(jobs_dir=tmp_path / "jobs", virtual_gpus=0, cpus=4, grace_s=1.0)
    executor = LocalExecutor(config)
    loop = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert loop.tick()  # the node registered
    yield loop
    cleanup_jobs(tmp_path / "jobs")
    executor.poll([])  # reaps its exited supervisors


def submit(db: Database, name: str, code: str, *, memory_mb: int = 1024) -> int:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(
            name=name, command=(sys.executable, "-c", code), memory_mb_per_node=memory_mb
        )
        made = submit_job(session, admin, spec, project=None, idempotency_key=None, now=0)
        return made.job.id


def report(db: Database, job_id: int) -> Efficiency:
    with db.read() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        return job_efficiency(session, admin, job_id)


def run_all(db: Database, loop: ControlLoop, job_ids: list[int], timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(report(db, i).overall is not None for i in job_ids):
        assert time.monotonic() < deadline, "the jobs did not all end"
        loop.tick()
        time.sleep(0.05)


def test_real_jobs_report_the_memory_and_cpu_they_used(db: Database, loop: ControlLoop) -> None:
    held = submit(db, "hold-200mb", HOLD_200_MB, memory_mb=2048)
    busy = submit(db, "busy", BUSY)
    sleeping = submit(db, "sleeping", SLEEPING)
    run_all(db, loop, [held, busy, sleeping])

    memory = report(db, held)
    assert memory.state == JobState.SUCCEEDED
    assert memory.overall is not None
    assert memory.overall.memory_mb == 2048
    assert memory.overall.peak_rss_mb is not None
    assert 200 <= memory.overall.peak_rss_mb <= 240
    efficiency = memory.overall.memory_efficiency_pct
    assert efficiency is not None
    assert 200 / 2048 * 100 <= efficiency <= 240 / 2048 * 100
    peak = f"{memory.overall.peak_rss_mb:.0f} MB"
    assert memory.hints == (f"asked 2 GB of memory, used at most {peak}: ask for 512 MB",)

    busy_use, sleeping_use = report(db, busy).overall, report(db, sleeping).overall
    assert busy_use is not None
    assert sleeping_use is not None
    assert (busy_use.cpu_efficiency_pct or 0) >= 50  # two CPUs, shared with other tests
    assert (sleeping_use.cpu_efficiency_pct or 100) <= 10
