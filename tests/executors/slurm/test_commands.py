"""SlurmClient against the real test cluster: what each call returns, and how tools fail."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from aifactory.executors.slurm.commands import (
    AccountingDisabled,
    SlurmClient,
    SlurmConfig,
    SlurmError,
)
from aifactory.executors.slurm.parse import SlurmJob
from aifactory.executors.slurm.values import ExitStatus
from tests.executors.slurm.conftest import Jobs
from tests.slurm_cluster import ClusterSpec, SlurmCluster, running_cluster

pytestmark = pytest.mark.slow

BUSY = """#!/bin/sh
python3 -c "
import time
x = bytearray(120 * 2**20)
t = time.time()
while time.time() - t < 3: pass
"
"""


def accounted(client: SlurmClient, job_id: int, steps: bool = False) -> list[SlurmJob]:
    """slurmctld hands finished jobs to slurmdbd a moment after they end: wait for the record."""
    deadline = time.monotonic() + 20
    while True:
        records = client.accounting([job_id], steps=steps)
        if records and records[0].ended_at is not None:
            return records
        assert time.monotonic() < deadline, f"no finished sacct record of job {job_id}"
        time.sleep(0.3)


def test_submit_passes_options_and_only_the_given_environment(jobs: Jobs) -> None:
    assert "PYTEST_CURRENT_TEST" in os.environ  # the caller's own, which must not leak
    job_id = jobs.submit(
        '#!/bin/sh\necho "$AIF_MESSAGE|${PYTEST_CURRENT_TEST:-unset}|$TZ"\n',
        "--job-name=aif-1-1",
        "--comment=aifactory:1:1",
    )
    # env= goes through sbatch's default --export=ALL
    with_env = jobs.client.submit(
        '#!/bin/sh\necho "$AIF_MESSAGE"\n',
        [f"--chdir={jobs.workdir}", f"--output={jobs.workdir}/%j.out"],
        env={"AIF_MESSAGE": "hallo"},
    )
    jobs.submitted.append(with_env)
    job = jobs.wait_ended(job_id)
    assert (job.name, job.comment, job.state) == ("aif-1-1", "aifactory:1:1", "COMPLETED")
    assert jobs.output(job_id) == "|unset|UTC\n"
    jobs.wait_ended(with_env)
    assert jobs.output(with_env) == "hallo\n"


def test_a_refused_submission_raises_with_slurms_message(slurm_client: SlurmClient) -> None:
    with pytest.raises(SlurmError, match="Requested node configuration is not available") as err:
        slurm_client.submit("#!/bin/sh\ntrue\n", ["--gres=gpu:99"])
    assert err.value.returncode == 1
    assert not err.value.unreachable
    with pytest.raises(SlurmError, match="sbatch exited 1"):
        slurm_client.submit("no interpreter line\n")


def test_queue_finds_jobs_by_id_and_name(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\nsleep 60\n", "--job-name=aif-2-1")
    assert [j.id for j in slurm_client.queue([job_id])] == [job_id]
    assert [j.id for j in slurm_client.queue(name="aif-2-1")] == [job_id]
    assert job_id in {j.id for j in slurm_client.queue()}
    assert slurm_client.queue([]) == []
    assert slurm_client.queue([999_999]) == []  # unknown to slurmctld: no error


def test_accounting_has_exit_codes_times_and_usage(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit(BUSY, "--job-name=aif-3-1", "--comment=aifactory:3:1", "--mem=400M")
    finished = jobs.wait_ended(job_id)
    (job,) = accounted(slurm_client, job_id)
    assert (job.state, job.exit, job.step, job.comment) == (
        "COMPLETED",
        ExitStatus(0),
        None,
        "aifactory:3:1",
    )
    assert (job.started_at, job.ended_at) == (finished.started_at, finished.ended_at)
    assert job.tres["mem"] == 400
    steps = {record.step: record for record in accounted(slurm_client, job_id, steps=True)}
    assert "batch" in steps
    assert steps["batch"].usage["cpu"] >= 1  # CPU seconds (it spun for 3 s)
    assert steps["batch"].usage["mem"] >= 100  # MiB (it held 120)
    assert slurm_client.accounting([999_999]) == []


def test_accounting_of_a_failed_job(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\nexit 4\n")
    jobs.wait_ended(job_id)
    (job,) = accounted(slurm_client, job_id)
    assert (job.state, job.exit) == ("FAILED", ExitStatus(4))


def test_accounting_by_time_window_lags_behind(jobs: Jobs, slurm_client: SlurmClient) -> None:
    """A job sacct already has by id can be missing from a --starttime window for a few
    seconds more (seen on 22.05): ask for your jobs by id."""
    job_id = jobs.submit("#!/bin/sh\ntrue\n")
    jobs.wait_ended(job_id)
    accounted(slurm_client, job_id)
    deadline = time.monotonic() + 20
    while job_id not in {r.id for r in slurm_client.accounting(since=time.time() - 600)}:
        assert time.monotonic() < deadline, "the job never showed in the time window"
        time.sleep(0.5)


def test_show_job_gives_the_gpus_of_each_node(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\nsleep 60\n", "--nodes=2", "--gres=gpu:1")
    jobs.wait(job_id, {"RUNNING"})
    details = slurm_client.show_job(job_id)
    assert details is not None
    assert set(details.allocations) == {"n1", "n2"}
    assert all(len(a.gpu_indices) == 1 for a in details.allocations.values())
    assert details.job.gpus == 2
    assert slurm_client.show_job(999_999) is None


def test_cancel_is_quiet_about_jobs_that_have_ended(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\ntrue\n")
    jobs.wait_ended(job_id)
    slurm_client.cancel(job_id)
    slurm_client.cancel(job_id, signal="TERM", full=True)
    slurm_client.cancel(999_999)
    assert jobs.wait_ended(job_id).state == "COMPLETED"


def test_a_controller_that_does_not_answer_is_unreachable(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    text = slurm_cluster.conf.read_text()
    port = slurm_cluster.ports["ctld"]
    conf = tmp_path / "slurm.conf"
    conf.write_text(text.replace(f"SlurmctldPort={port}", "SlurmctldPort=1"))
    client = SlurmClient(SlurmConfig(conf=str(conf)))
    with pytest.raises(SlurmError) as err:
        client.queue()
    assert err.value.unreachable
    with pytest.raises(SlurmError) as err:
        client.topology()  # not read as "no topology": that would unset every node's block
    assert err.value.unreachable
    impatient = SlurmClient(SlurmConfig(conf=str(conf), timeout_s=0.5))
    with pytest.raises(SlurmError, match="timed out") as err:
        impatient.queue()
    assert (err.value.returncode, err.value.unreachable) == (None, True)


def test_topology_gives_each_node_its_leaf_switch(slurm_client: SlurmClient) -> None:
    assert slurm_client.topology() == {"n1": "leaf0", "n2": "leaf0"}


def test_a_cluster_without_topology_has_no_blocks() -> None:
    with running_cluster(ClusterSpec(accounting=False, leaves=())) as cluster:
        assert SlurmClient(SlurmConfig(conf=str(cluster.conf))).topology() == {}


def test_sacct_without_accounting_storage_says_so(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    text = slurm_cluster.conf.read_text()
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        text.replace(
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageType=accounting_storage/none",
        )
    )
    with pytest.raises(AccountingDisabled, match="accounting storage is disabled"):
        SlurmClient(SlurmConfig(conf=str(conf))).accounting()


def test_a_missing_tool_is_an_error(tmp_path: Path) -> None:
    client = SlurmClient(SlurmConfig(bin_dir=str(tmp_path)))
    with pytest.raises(SlurmError, match="squeue not found"):
        client.queue()
