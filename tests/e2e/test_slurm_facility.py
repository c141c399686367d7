"""A facility on the real test Slurm cluster (`aifactory up --executor slurm`): its nodes and
GPUs come from Slurm; jobs run as Slurm jobs and end with their outcomes and logs; a foreign
`sbatch` job's GPUs are not handed out; a SIGKILL of the control plane while a job runs, and a
restart, reconcile it without running it twice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aifactory.client import ApiError, Client
from aifactory.executors.slurm.commands import SlurmClient, SlurmConfig
from aifactory.executors.slurm.parse import SlurmJob
from tests.e2e.process import FacilityProcess
from tests.slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> SlurmClient:
    return SlurmClient(SlurmConfig(conf=str(slurm_cluster.conf)))


@pytest.fixture
def facility(
    shared_tmp: Path, slurm_cluster: SlurmCluster, slurm: SlurmClient
) -> Iterator[FacilityProcess]:
    """A facility whose data directory lies where the nodes reach it (jobs' directories and
    datasets, as the projects' identities)."""
    data = shared_tmp / "data"
    process = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=None)
    process.args += ["--executor", "slurm", "--slurm-conf", str(slurm_cluster.conf)]
    process.env["AIFACTORY_GPU_DEVICE_PATTERN"] = slurm_cluster.gpu_device_pattern
    data.mkdir()
    process.start()
    yield process
    process.stop()
    for record in (data / "jobs").glob("*/attempt-*/slurm.json"):  # this facility's jobs only
        slurm.cancel(json.loads(record.read_text())["slurm_job_id"])


def until(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {check()}")


def state_of(api: Client, job_id: int, *states: str) -> dict[str, Any]:
    def seen() -> Any:
        job = api.job(job_id)
        return job if job["state"] in states else False

    try:
        return until(seen, f"job {job_id} {states}")
    except AssertionError:
        job = api.job(job_id)
        raise AssertionError(f"job {job_id} is {job['state']}: {job['state_reason']}") from None


def slurm_job_of(facility: FacilityProcess, slurm: SlurmClient, job_id: int) -> SlurmJob:
    record = facility.data_dir / "jobs" / str(job_id) / "attempt-1" / "slurm.json"
    (found,) = slurm.queue([json.loads(record.read_text())["slurm_job_id"]])
    return found


def test_jobs_run_on_slurm_with_their_outcomes(
    facility: FacilityProcess, slurm: SlurmClient
) -> None:
    with facility.client() as api:
        nodes = {n["id"]: n for n in api.facility()["nodes"]}
        assert set(nodes) == {"n1", "n2"}
        assert {(n["gpus"], n["gpu_model"], n["cpus"]) for n in nodes.values()} == {(4, "h100", 8)}
        spec = {"gpus": 2, "time_limit_s": 300, "memory_mb": 512}
        ok = api.submit(["bash", "-c", 'echo "gpus $CUDA_VISIBLE_DEVICES"; echo hallo'], **spec)
        bad = api.submit(["bash", "-c", "exit 4"], **spec)
        done = state_of(api, ok["id"], "SUCCEEDED", "FAILED")
        assert done["state"] == "SUCCEEDED", done
        text = api.logs(ok["id"])["text"]
        assert "hallo" in text
        assert "gpus 0,1" in text or "gpus 2,3" in text
        failed = state_of(api, bad["id"], "SUCCEEDED", "FAILED")
        assert (failed["state"], failed["exit_code"]) == ("FAILED", 4)
        with pytest.raises(ApiError) as refused:  # its engine's socket: out of the gateway's reach
            api.create_endpoint("served", project="default", source_job=ok["id"])
        assert refused.value.status == 409
        assert "endpoints need the local executor" in str(refused.value)
        with pytest.raises(ApiError) as no_session:  # a notebook's socket: the same
            api.start_session(project="default")
        assert no_session.value.status == 409
        assert "sessions, exec and attach need the local executor" in str(no_session.value)
        with pytest.raises(ApiError) as no_exec:
            api.exec(ok["id"], ["true"])
        assert no_exec.value.status in (409, 404)
    ran = slurm_job_of(facility, slurm, ok["id"])
    assert ran.account == "default"  # the project's Slurm account, made for it
    assert ran.tres["gres/gpu"] == 2


def test_a_foreign_job_keeps_its_gpus(
    facility: FacilityProcess, slurm: SlurmClient, tmp_path: Path
) -> None:
    foreign = slurm.submit(
        "#!/bin/sh\nsleep 120\n", ["--gres=gpu:4", "--nodelist=n2", f"--output={tmp_path}/f.out"]
    )
    until(lambda: slurm.queue([foreign])[0].state == "RUNNING", "the foreign job to run")
    with facility.client() as api:
        spec = {"gpus": 4, "time_limit_s": 300, "memory_mb": 512}
        first = api.submit(["sleep", "20"], **spec)
        second = api.submit(["sleep", "20"], **spec)
        running = state_of(api, first["id"], "RUNNING")
        assert list(running["placement"]) == ["n1"]
        time.sleep(3)  # ticks go by: n2's GPUs are the foreign job's
        assert api.job(second["id"])["state"] == "PENDING"
        (still,) = slurm.queue([foreign])
        assert still.state == "RUNNING"  # never touched
        slurm.cancel(foreign)
        assert list(state_of(api, second["id"], "RUNNING")["placement"]) == ["n2"]


def test_a_killed_control_plane_reconciles_without_running_twice(
    facility: FacilityProcess, slurm: SlurmClient
) -> None:
    with facility.client() as api:
        job = api.submit(
            ["bash", "-c", "echo run >> runs.txt; sleep 6"], time_limit_s=300, memory_mb=512
        )
        state_of(api, job["id"], "RUNNING")
    runs = facility.data_dir / "jobs" / str(job["id"]) / "work" / "runs.txt"  # its own dir
    facility.kill()
    time.sleep(8)  # the job ends while nobody watches
    facility.start()
    with facility.client() as api:
        done = state_of(api, job["id"], "SUCCEEDED", "FAILED")
    assert done["state"] == "SUCCEEDED", done
    assert runs.read_text() == "run\n"
    submitted = slurm_job_of(facility, slurm, job["id"])
    assert [j.id for j in slurm.queue(name=submitted.name)] == [submitted.id]  # one Slurm job


def test_gpu_counts_are_honoured(facility: FacilityProcess, slurm: SlurmClient) -> None:
    with facility.client() as api:
        spec = {"gpus": 2, "time_limit_s": 300, "memory_mb": 512}
        jobs = [api.submit(["sleep", "12"], **spec) for _ in range(5)]
        running = [state_of(api, j["id"], "RUNNING") for j in jobs[:4]]
        assert sorted(next(iter(j["placement"])) for j in running) == ["n1", "n1", "n2", "n2"]
        for job in running:  # two 2-GPU jobs share each 4-GPU node, on GPUs of their own
            ran = slurm_job_of(facility, slurm, job["id"])
            assert ran.tres["gres/gpu"] == 2
        assert api.job(jobs[4]["id"])["state"] == "PENDING"  # no room: it waits its turn
        assert state_of(api, jobs[4]["id"], "SUCCEEDED")["state"] == "SUCCEEDED"
