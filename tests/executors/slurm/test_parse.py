"""The parsers on output captured from a real Slurm 22.05 cluster (captured/, see capture.py).

scenario.json names the job behind each role (running, pending, failed, timed out…)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.slurm.parse import (
    QUEUE_FIELDS,
    SlurmJob,
    parse_accounting,
    parse_job_details,
    parse_node_state,
    parse_nodes,
    parse_partitions,
    parse_queue,
    parse_submitted,
    parse_topology,
)
from aifactory.executors.slurm.states import JOB_STATES, base_state, job_phase
from aifactory.executors.slurm.values import ExitStatus

CAPTURED = Path(__file__).parent / "captured"
ROLES: dict[str, int] = json.loads((CAPTURED / "scenario.json").read_text())["roles"]


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


def by_role(jobs: list[SlurmJob]) -> dict[str, SlurmJob]:
    found = {job.id: job for job in jobs if job.step is None}
    return {role: found[job_id] for role, job_id in ROLES.items() if job_id in found}


@pytest.fixture(scope="module")
def queue() -> dict[str, SlurmJob]:
    return by_role(parse_queue(captured("squeue.txt")))


@pytest.fixture(scope="module")
def accounting() -> dict[str, SlurmJob]:
    return by_role(parse_accounting(captured("sacct.txt")))


def test_sbatch_answers_the_job_id() -> None:
    assert parse_submitted(captured("sbatch.txt")) == ROLES["timeout"]
    assert parse_submitted("42;aiftest\n") == 42
    with pytest.raises(ValueError, match="job id"):
        parse_submitted("sbatch: error: Batch job submission failed\n")


def test_squeue_holds_every_job_of_the_scenario(queue: dict[str, SlurmJob]) -> None:
    assert set(queue) == set(ROLES)
    assert {job.state for job in queue.values()} == {
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "CANCELLED",
    }


def test_squeue_running_job(queue: dict[str, SlurmJob]) -> None:
    job = queue["running"]
    assert (job.name, job.comment, job.state, job.phase) == (
        "aif-42-1",
        "aifactory:42:1",
        "RUNNING",
        Phase.RUNNING,
    )
    assert job.nodes == ("n1",)
    assert job.gpus == 2
    assert (job.tres["cpu"], job.tres["mem"]) == (2, 2048)
    assert job.time_limit_s == 86400 + 2 * 3600 + 4 * 60  # 1-02:03:04, rounded up to minutes
    assert job.started_at is not None
    assert job.submitted_at is not None
    assert job.started_at >= job.submitted_at
    assert job.ended_at is None  # squeue prints the expected end; it has not ended
    assert job.exit is None
    assert (job.partition, job.account, job.user) == ("aif", "root", "root")


def test_squeue_foreign_and_two_node_jobs(queue: dict[str, SlurmJob]) -> None:
    foreign = queue["foreign"]
    assert (foreign.name, foreign.comment, foreign.gpus) == ("wrap", None, 1)
    assert foreign.time_limit_s is None  # UNLIMITED
    assert queue["two_nodes"].nodes == ("n1", "n2")
    assert queue["two_nodes"].gpus == 2


def test_squeue_pending_jobs(queue: dict[str, SlurmJob]) -> None:
    waiting = queue["pending_resources"]
    assert (waiting.state, waiting.reason, waiting.phase) == (
        "PENDING",
        "Resources",
        Phase.STARTING,
    )
    assert waiting.started_at is None  # squeue prints an expected start
    assert waiting.nodes == ()
    assert waiting.gpus == 2  # what it asks for
    assert queue["held"].reason == "JobHeldUser"
    requeued = queue["requeued"]
    assert (requeued.state, requeued.restarts) == ("PENDING", 1)


def test_squeue_ended_jobs(queue: dict[str, SlurmJob]) -> None:
    expected = {
        "completed": ("COMPLETED", Outcome.SUCCEEDED, ExitStatus(0, 0)),
        "failed": ("FAILED", Outcome.FAILED, ExitStatus(3, 0)),
        "killed": ("FAILED", Outcome.FAILED, ExitStatus(0, 9)),
        "timeout": ("TIMEOUT", Outcome.TIMEOUT, ExitStatus(0, 15)),
        "cancelled_running": ("CANCELLED", Outcome.CANCELLED, ExitStatus(0, 15)),
    }
    for role, (state, outcome, status) in expected.items():
        job = queue[role]
        assert (job.state, job.phase, job.outcome, job.exit) == (
            state,
            Phase.EXITED,
            outcome,
            status,
        ), role
        assert job.started_at is not None
        assert job.ended_at is not None
        assert job.ended_at >= job.started_at
    timeout = queue["timeout"]
    assert timeout.time_limit_s == 60
    assert timeout.ended_at - timeout.started_at >= 60  # type: ignore[operator]


def test_a_job_cancelled_while_pending_never_started(queue: dict[str, SlurmJob]) -> None:
    job = queue["cancelled_pending"]
    assert (job.state, job.outcome, job.nodes) == ("CANCELLED", Outcome.CANCELLED, ())
    assert job.started_at is None
    assert job.ended_at is not None


def test_a_bar_in_a_job_name_shifts_no_field() -> None:
    line = captured("squeue.txt").splitlines()[0]
    head, _name = line[:-1].rsplit("|", 1)
    job = parse_queue(f"{head}|a|b c|\n")[0]
    assert job.name == "a|b c"
    assert job.id == parse_queue(line)[0].id


def test_a_line_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=f"expected {len(QUEUE_FIELDS)} fields"):
        parse_queue("1|2|3|\n")


def test_sacct_allocations(accounting: dict[str, SlurmJob]) -> None:
    assert set(accounting) == set(ROLES)
    completed = accounting["completed"]
    assert (completed.state, completed.exit, completed.comment) == (
        "COMPLETED",
        ExitStatus(0, 0),
        "aifactory:46:1",  # sacct has a job's comment once it has ended
    )
    assert completed.elapsed_s is not None
    assert completed.elapsed_s >= 3
    assert accounting["failed"].exit == ExitStatus(3, 0)
    assert accounting["killed"].exit == ExitStatus(0, 9)
    assert accounting["timeout"].outcome is Outcome.TIMEOUT
    cancelled = accounting["cancelled_running"]
    assert (cancelled.state, cancelled.state_detail) == ("CANCELLED", "CANCELLED by 0")
    assert accounting["cancelled_pending"].started_at is None
    assert accounting["held"].state == "PENDING"
    assert accounting["two_nodes"].nodes == ("n1", "n2")
    assert accounting["running"].gpus == 2


def test_sacct_steps_carry_the_usage() -> None:
    jobs = parse_accounting(captured("sacct-steps.txt"))
    batch = {job.id: job for job in jobs if job.step == "batch"}
    usage = batch[ROLES["completed"]].usage
    assert usage["cpu"] >= 2  # seconds of CPU: the job spun for 4 s
    assert usage["mem"] > 100  # MiB: it held 150 MiB
    allocation = next(j for j in jobs if j.id == ROLES["completed"] and j.step is None)
    assert allocation.usage == {}


def test_scontrol_nodes() -> None:
    nodes = {node.name: node for node in parse_nodes(captured("nodes.txt"))}
    n1, n2 = nodes["n1"], nodes["n2"]
    assert (n1.cpus, n1.memory_mb, n1.gpus, n1.gpu_model) == (8, 16000, {"h100": 4}, "h100")
    assert n1.gpus_used == {"h100": 4}
    assert (n1.state, n1.flags, n1.usable) == ("MIXED", frozenset(), True)
    assert n1.partitions == ("aif",)
    assert n1.address == "127.0.0.1"
    assert n1.cpus_allocated > 0
    assert n1.memory_allocated_mb > 0
    assert (n2.state, n2.flags, n2.usable) == ("MIXED", {"DRAIN"}, False)
    assert n2.reason is not None
    assert n2.reason.startswith("maintenance window")


@pytest.mark.parametrize(
    ("text", "state", "flags"),
    [
        ("IDLE", "IDLE", set()),
        ("MIXED+DRAIN", "MIXED", {"DRAIN"}),
        ("IDLE*", "IDLE", {"NOT_RESPONDING"}),
        ("DOWN*+DRAIN", "DOWN", {"NOT_RESPONDING", "DRAIN"}),
        ("idle~", "IDLE", {"POWERED_DOWN"}),
        ("ALLOCATED+COMPLETING", "ALLOCATED", {"COMPLETING"}),
    ],
)
def test_node_states(text: str, state: str, flags: set[str]) -> None:
    assert parse_node_state(text) == (state, flags)


def test_scontrol_partitions() -> None:
    (partition,) = parse_partitions(captured("partitions.txt"))
    assert (partition.name, partition.default, partition.up) == ("aif", True, True)
    assert partition.nodes == ("n1", "n2")
    assert partition.max_time_s is None


def test_scontrol_topology_gives_each_node_its_leaf_switch() -> None:
    # captured: leaf0 (n1) and leaf1 (n2) under a spine, whose Level 1 line names both nodes
    assert parse_topology(captured("topology.txt")) == {"n1": "leaf0", "n2": "leaf1"}


def test_topology_of_racks_in_hostlists() -> None:
    text = (
        "SwitchName=s0 Level=0 LinkSpeed=1 Nodes=gpu[001-002]\n"
        "SwitchName=s1 Level=0 LinkSpeed=1 Nodes=gpu[003-004],spare1\n"
        "SwitchName=s2 Level=1 LinkSpeed=1 Nodes=gpu[001-004],spare1 Switches=s[0-1]\n"
        "SwitchName=s3 Level=0 LinkSpeed=1 Nodes=gpu004\n"  # a second rail: the first leaf holds
    )
    assert parse_topology(text) == {
        "gpu001": "s0",
        "gpu002": "s0",
        "gpu003": "s1",
        "gpu004": "s1",
        "spare1": "s1",
    }


def test_topology_of_nvlink_blocks() -> None:
    # topology/block (Slurm 23.11+): a block a line; aggregated blocks join them and are none
    text = (
        "BlockName=b1 BlockIndex=0 Nodes=n[1-4] BlockSize=4\n"
        "BlockName=b2 BlockIndex=1 Nodes=n[5-8] BlockSize=4\n"
        "AggregatedBlock=b1,b2 BlockIndex=2 Nodes=n[1-8] BlockSize=8\n"
    )
    blocks = parse_topology(text)
    assert (blocks["n1"], blocks["n4"], blocks["n5"], len(blocks)) == ("b1", "b1", "b2", 8)


def test_no_topology_declared_gives_no_blocks() -> None:
    # Slurm 22.05 without a topology plugin prints nothing on stdout (its error on stderr)
    assert parse_topology("") == {}
    assert parse_topology("SwitchName=s0 Level=0 LinkSpeed=1\n") == {}  # a leaf without nodes


def test_scontrol_job_details() -> None:
    (two,) = parse_job_details(captured("job-two-nodes.txt"))
    assert two.job.id == ROLES["two_nodes"]
    assert two.job.nodes == ("n1", "n2")
    assert set(two.allocations) == {"n1", "n2"}
    for allocation in two.allocations.values():
        assert len(allocation.gpu_indices) == 1
        assert len(allocation.cpu_ids) == 1
        assert allocation.memory_mb == 1000
    assert two.fields["BatchHost"] == "n1"
    (pending,) = parse_job_details(captured("job-pending.txt"))
    assert (pending.job.state, pending.job.started_at, pending.allocations) == ("PENDING", None, {})
    (failed,) = parse_job_details(captured("job-failed.txt"))
    assert failed.job.exit == ExitStatus(3, 0)
    (timeout,) = parse_job_details(captured("job-timeout.txt"))
    assert (timeout.job.outcome, timeout.job.exit) == (Outcome.TIMEOUT, ExitStatus(0, 15))
    assert timeout.job.time_limit_s == 60


def test_every_slurm_state_has_a_phase() -> None:
    assert job_phase("CANCELLED by 1000") == (Phase.EXITED, Outcome.CANCELLED)
    assert job_phase("CD") == (Phase.EXITED, Outcome.SUCCEEDED)
    assert job_phase("PREEMPTED") == (Phase.EXITED, Outcome.PREEMPTED)
    assert job_phase("NODE_FAIL") == (Phase.EXITED, Outcome.FAILED)
    assert job_phase("COMPLETING") == (Phase.RUNNING, None)
    assert base_state("RUNNING+SIGNALING") == "RUNNING"
    for state, (phase, outcome) in JOB_STATES.items():
        assert (outcome is not None) == (phase is Phase.EXITED), state
    with pytest.raises(ValueError, match="unknown Slurm job state"):
        job_phase("HOVERING")
