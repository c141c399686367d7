"""Regenerate the captured Slurm output under captured/ from a real test cluster.

    .venv/bin/python -m tests.executors.slurm.capture      # about two minutes (a TIMEOUT job)

It starts the test cluster (tests/slurm_cluster.py), puts jobs into every state the parsers
must read — running (ours, a foreign one submitted with plain sbatch, a two-node one), pending
(for resources, held), completed, failed (exit code, killed by a signal), timed out, cancelled
(running and pending), requeued — drains a node, and records what SlurmClient's own calls print,
through a recording runner, so the files hold exactly the command lines the client uses.
`scenario.json` names the job behind each role and the command line behind each file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from aifactory.executors.slurm.commands import SlurmClient, SlurmConfig, run_process
from tests.slurm_cluster import ClusterSpec, SlurmCluster, running_cluster

CAPTURED = Path(__file__).parent / "captured"
SLEEP = "#!/bin/sh\nsleep 600\n"
BUSY = (
    "#!/bin/sh\n"
    'python3 -c "import time\n'
    "x = bytearray(150 * 2**20)\n"
    "t = time.time()\n"
    'while time.time() - t < 4: pass"\n'
    "echo done\n"
)


class Recorder:
    """A SlurmClient runner that remembers the last command line and what it printed."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.argv: list[str] = []
        self.stdout = ""

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], stdin: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        done = run_process(argv, env, stdin, timeout)
        self.argv, self.stdout = list(argv), done.stdout
        return done

    def command(self) -> str:
        return " ".join(self.argv).replace(self.root, "<cluster>")


def main() -> None:
    CAPTURED.mkdir(exist_ok=True)
    with running_cluster() as cluster:
        recorder = Recorder(cluster.root)
        client = SlurmClient(SlurmConfig(conf=str(cluster.conf)), runner=recorder)
        roles = run_scenario(cluster, client, recorder)
        commands = capture(client, recorder, roles)
    commands["topology.txt"] = capture_topology()
    (CAPTURED / "scenario.json").write_text(
        json.dumps({"roles": roles, "commands": commands}, indent=2) + "\n"
    )
    print(f"captured {len(commands)} files under {CAPTURED}")


def run_scenario(cluster: SlurmCluster, client: SlurmClient, recorder: Recorder) -> dict[str, int]:
    jobs = cluster.jobs_dir

    def submit(script: str, *options: str) -> int:
        return client.submit(script, [f"--chdir={jobs}", f"--output={jobs}/%j.out", *options])

    roles = {"timeout": submit(SLEEP, "--job-name=aif-7-1", "--time=1", "--nodelist=n2")}
    (CAPTURED / "sbatch.txt").write_text(recorder.stdout)
    roles["running"] = submit(
        SLEEP,
        "--job-name=aif-42-1",
        "--comment=aifactory:42:1",
        "--gres=gpu:h100:2",
        "--cpus-per-task=2",
        "--mem=2G",
        "--time=1-02:03:04",
        "--nodelist=n1",
    )
    foreign = cluster.run(
        "sbatch", "--parsable", f"--chdir={jobs}", "--gres=gpu:1", "-w", "n1", "--wrap", "sleep 600"
    )
    roles["foreign"] = int(foreign.stdout.strip())
    roles["two_nodes"] = submit(SLEEP, "--job-name=aif-43-1", "--nodes=2", "--gres=gpu:1")
    roles["pending_resources"] = submit(
        SLEEP, "--job-name=aif-44-1", "--gres=gpu:2", "--nodelist=n1"
    )
    roles["held"] = submit(SLEEP, "--job-name=aif-45-1", "--hold")
    roles["completed"] = submit(
        BUSY, "--job-name=aif-46-1", "--comment=aifactory:46:1", "--mem=500M"
    )
    roles["failed"] = submit(
        "#!/bin/sh\nexit 3\n", "--job-name=aif-47-1", "--comment=aifactory:47:1"
    )
    roles["killed"] = submit("#!/bin/sh\nkill -9 $$\n", "--job-name=aif-48-1")
    roles["cancelled_running"] = submit(SLEEP, "--job-name=aif-49-1")
    roles["cancelled_pending"] = submit(SLEEP, "--job-name=aif-50-1", "--hold")
    roles["requeued"] = submit(SLEEP, "--job-name=aif-51-1", "--requeue")
    wait_for(client, [roles["cancelled_running"], roles["requeued"]], {"RUNNING"})
    client.cancel(roles["cancelled_running"])
    client.cancel(roles["cancelled_pending"])
    cluster.run("scontrol", "requeue", str(roles["requeued"]))
    ended = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"}
    done = [roles[r] for r in ("completed", "failed", "killed", "cancelled_running", "timeout")]
    wait_for(client, done, ended, timeout_s=150)
    cluster.run("scontrol", "update", "NodeName=n2", "State=DRAIN", "Reason=maintenance window")
    return roles


def wait_for(
    client: SlurmClient, job_ids: list[int], states: set[str], timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        found = {job.id: job.state for job in client.queue(job_ids)}
        if all(found.get(job_id) in states for job_id in job_ids):
            return
        if time.monotonic() > deadline:
            sys.exit(f"jobs did not reach {sorted(states)}: {found}")
        time.sleep(1)


def capture(client: SlurmClient, recorder: Recorder, roles: dict[str, int]) -> dict[str, str]:
    ids = list(roles.values())  # by id: a job held, then cancelled, is in no time window
    calls = {
        "squeue.txt": lambda: client.queue(),
        "sacct.txt": lambda: client.accounting(ids),
        "sacct-steps.txt": lambda: client.accounting(ids, steps=True),
        "nodes.txt": lambda: client.nodes(),
        "partitions.txt": lambda: client.partitions(),
        "job-two-nodes.txt": lambda: client.show_job(roles["two_nodes"]),
        "job-pending.txt": lambda: client.show_job(roles["pending_resources"]),
        "job-failed.txt": lambda: client.show_job(roles["failed"]),
        "job-timeout.txt": lambda: client.show_job(roles["timeout"]),
        "sinfo.txt": lambda: client.output("sinfo", ["--Node", "--long"]),
    }
    commands = {"sbatch.txt": "sbatch --parsable --chdir=… --output=… (script on stdin)"}
    for name, call in calls.items():
        call()
        (CAPTURED / name).write_text(recorder.stdout)
        commands[name] = recorder.command()
    return commands


def capture_topology() -> str:
    """`scontrol show topology` on a cluster of two leaf switches under a spine (a second,
    small cluster: the scenario's keeps both nodes in one block)."""
    spec = ClusterSpec(accounting=False, leaves=(("n1",), ("n2",)))
    with running_cluster(spec) as cluster:
        recorder = Recorder(cluster.root)
        SlurmClient(SlurmConfig(conf=str(cluster.conf)), runner=recorder).topology()
    (CAPTURED / "topology.txt").write_text(recorder.stdout)
    return recorder.command()


if __name__ == "__main__":
    main()
