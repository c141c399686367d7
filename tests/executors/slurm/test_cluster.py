"""The test cluster behaves as a real Slurm cluster: jobs run and end with their exit codes, GPU
counts are scheduled, cancels and signals work (time limits: test_time_limit.py). The GPU tests
pin their jobs to n1."""

from __future__ import annotations

import pytest

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.slurm.commands import SlurmClient
from aifactory.executors.slurm.values import ExitStatus
from tests.executors.slurm.conftest import Jobs

pytestmark = pytest.mark.slow

SHOW_GPUS = (
    '#!/bin/sh\necho "$CUDA_VISIBLE_DEVICES|$SLURM_JOB_GPUS|$GPU_DEVICE_ORDINAL"\nsleep 60\n'
)
TRAP = """#!/bin/bash
trap 'echo {signal} > {marker}; exit 0' {signal}
echo started
for i in $(seq 300); do sleep 0.2; done
"""


def test_two_nodes_come_up_idle_with_four_gpus_each(slurm_client: SlurmClient) -> None:
    nodes = {node.name: node for node in slurm_client.nodes()}
    assert set(nodes) == {"n1", "n2"}
    for node in nodes.values():
        assert (node.gpus, node.cpus, node.memory_mb) == ({"h100": 4}, 8, 16000)
        assert node.usable
        assert node.partitions == ("aif",)
    (partition,) = slurm_client.partitions()
    assert (partition.name, partition.default, partition.up) == ("aif", True, True)


def test_a_job_runs_and_completes_with_exit_code_zero(jobs: Jobs) -> None:
    job_id = jobs.submit("#!/bin/sh\necho hallo wereld\n")
    job = jobs.wait_ended(job_id)
    assert (job.state, job.outcome, job.exit) == ("COMPLETED", Outcome.SUCCEEDED, ExitStatus(0))
    assert job.started_at is not None
    assert job.ended_at is not None
    assert jobs.output(job_id) == "hallo wereld\n"


def test_a_failing_job_reports_its_exit_code(jobs: Jobs) -> None:
    job = jobs.wait_ended(jobs.submit("#!/bin/sh\necho failing >&2\nexit 7\n"))
    assert (job.state, job.outcome, job.exit) == ("FAILED", Outcome.FAILED, ExitStatus(7))
    assert job.reason == "NonZeroExitCode"


def test_gpu_counts_are_scheduled(jobs: Jobs, slurm_client: SlurmClient) -> None:
    first = jobs.submit(SHOW_GPUS, "--gres=gpu:2", "--nodelist=n1")
    second = jobs.submit(SHOW_GPUS, "--gres=gpu:2", "--nodelist=n1")
    jobs.wait(first, {"RUNNING"})
    jobs.wait(second, {"RUNNING"})
    third = jobs.submit(SHOW_GPUS, "--gres=gpu:2", "--nodelist=n1")
    waiting = jobs.wait(third, {"PENDING"}, reason="Resources")
    assert (waiting.phase, waiting.nodes, waiting.started_at) == (Phase.STARTING, (), None)
    seen = {}
    for job_id in (first, second):
        visible, job_gpus, ordinals = jobs.wait_file(jobs.workdir / f"{job_id}.out").split("|")
        assert visible == job_gpus == ordinals.strip()
        details = slurm_client.show_job(job_id)
        assert details is not None
        assert details.allocations["n1"].gpu_indices == tuple(int(i) for i in visible.split(","))
        seen[job_id] = set(visible.split(","))
    assert seen[first] | seen[second] == {"0", "1", "2", "3"}  # disjoint halves of n1's four
    n1 = next(node for node in slurm_client.nodes() if node.name == "n1")
    assert n1.gpus_used == {"h100": 4}
    assert jobs.wait(third, {"PENDING"}).reason == "Resources"  # still waiting
    slurm_client.cancel(first)
    assert jobs.wait(third, {"RUNNING"}).nodes == ("n1",)


def test_scancel_cancels_a_running_job(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\nsleep 120\n")
    jobs.wait(job_id, {"RUNNING"})
    slurm_client.cancel(job_id)
    job = jobs.wait_ended(job_id)
    assert (job.state, job.outcome, job.exit) == ("CANCELLED", Outcome.CANCELLED, ExitStatus(0, 15))


def test_scancel_cancels_a_pending_job(jobs: Jobs, slurm_client: SlurmClient) -> None:
    job_id = jobs.submit("#!/bin/sh\nsleep 120\n", "--hold")
    slurm_client.cancel(job_id)
    job = jobs.wait_ended(job_id)
    assert (job.state, job.started_at, job.nodes) == ("CANCELLED", None, ())


@pytest.mark.parametrize(
    ("signal", "how"), [("TERM", {"full": True}), ("USR1", {"batch_only": True})]
)
def test_a_signal_reaches_the_batch_script(
    jobs: Jobs, slurm_client: SlurmClient, signal: str, how: dict[str, bool]
) -> None:
    marker = jobs.workdir / f"got-{signal}"
    job_id = jobs.submit(TRAP.format(signal=signal, marker=marker))
    jobs.wait(job_id, {"RUNNING"})
    jobs.wait_file(jobs.workdir / f"{job_id}.out")  # the trap is set
    slurm_client.cancel(job_id, signal=signal, **how)
    assert jobs.wait_file(marker) == f"{signal}\n"
    job = jobs.wait_ended(job_id)
    assert (job.state, job.exit) == ("COMPLETED", ExitStatus(0))  # the script chose to exit 0
