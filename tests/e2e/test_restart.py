"""Kill the control plane with SIGKILL while jobs run; after restart every job has run exactly
once and ended in the right state (DESIGN.md §7). On SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.client import Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT"}


@pytest.fixture
def facility(tmp_path: Path, db_url: str) -> Iterator[FacilityProcess]:
    process = FacilityProcess(tmp_path / "data", db_url, virtual_gpus=4, cpus=8)
    process.data_dir.mkdir()
    yield process
    process.stop()
    process.kill_leftover_jobs()


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def states(api: Client, ids: list[int]) -> dict[int, str]:
    return {i: api.job(i)["state"] for i in ids}


def test_sigkill_during_runs_loses_nothing_and_runs_nothing_twice(
    facility: FacilityProcess, tmp_path: Path
) -> None:
    facility.start()
    with facility.client() as api:
        ids = []
        for n in range(10):
            script = f"echo $AIFACTORY_JOB_ID >> ran.txt; sleep {0.5 + (n % 4) * 0.5}; echo ok"
            ids.append(
                api.submit(script=script, gpus=1 + n % 2, name=f"job-{n}", time_limit_s=120)["id"]
            )
        failing = api.submit(["bash", "-c", "sleep 1; exit 3"], name="fails")["id"]
        ids.append(failing)
        wait_until(
            lambda: list(states(api, ids).values()).count("RUNNING") >= 2, 30, "two jobs running"
        )
    facility.kill()  # crash 1: jobs are running

    facility.start()
    time.sleep(0.3)
    facility.kill()  # crash 2: right after a restart, mid-reconcile or mid-admission

    facility.start()
    with facility.client() as api:
        wait_until(lambda: set(states(api, ids).values()) <= TERMINAL, 90, "every job to end")
        final = {i: api.job(i) for i in ids}

    ran = Counter(
        int(line)
        for i in ids
        if (marker := facility.data_dir / "jobs" / str(i) / "work" / "ran.txt").exists()
        for line in marker.read_text().split()
    )  # each job notes its runs in its own directory, which outlives its attempts
    assert ran == Counter({i: 1 for i in ids if i != failing}), "each job ran exactly once"
    assert final[failing]["state"] == "FAILED"
    assert final[failing]["exit_code"] == 3
    for job_id, job in final.items():
        if job_id == failing:
            continue
        assert job["state"] == "SUCCEEDED", job
        assert job["exit_code"] == 0
        assert job["attempts"] == 1
        assert [e["to_state"] for e in job["events"]] == [
            "PENDING",
            "ADMITTED",
            "RUNNING",
            "SUCCEEDED",
        ]


def test_a_restarted_facility_keeps_its_admin_and_jobs(facility: FacilityProcess) -> None:
    facility.start()
    with facility.client() as api:
        job_id = api.submit(["echo", "hi"], idempotency_key="k-1")["id"]
        api.wait(job_id, timeout_s=30)
    facility.kill()
    facility.start()
    assert "admin token:" not in facility.output(2)  # printed once, on the first start only
    assert facility.password is not None
    assert facility.password not in facility.output(2)  # so is the portal's first password
    assert "first password in" in facility.output(2)  # later starts say where it is kept
    with facility.client() as api:
        assert api.job(job_id)["state"] == "SUCCEEDED"
        assert api.submit(["echo", "hi"], idempotency_key="k-1")["id"] == job_id
        assert api.logs(job_id)["text"] == "hi\n"
