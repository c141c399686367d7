"""What the Slurm executor submits for one attempt: its name, sbatch options and batch script.

Pure: a Launch and where its files go in, text out. An attempt is named
`aif-<instance>-<job>-<attempt>` in Slurm, so it can be found again by name after a
control-plane crash, and work not named by this facility instance is someone else's (foreign
load).

The batch script runs the command in a process group of its own and writes two small files to
the attempt's directory on the shared file system: `started.json` as it begins and `exit.json`
with the exit code as it ends. SIGTERM to the batch shell (the facility's preemption and
time-limit warning, `scancel --signal=TERM --batch`) is passed on to the whole command, which
then has the grace period to checkpoint before Slurm kills it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aifactory.executors.base import Attempt, Launch

NAME = re.compile(r"^aif-([0-9a-z]+)-(\d+)-(\d+)$")


def job_name(attempt: Attempt, instance: str) -> str:
    """`instance` (store.flags.instance_id) keeps facilities sharing a cluster apart."""
    return f"aif-{instance}-{attempt.job_id}-{attempt.number}"


def attempt_of(name: str, instance: str) -> Attempt | None:
    """The attempt a Slurm job name stands for; None: not one this facility started."""
    found = NAME.match(name)
    if found is None or found[1] != instance:
        return None
    return Attempt(int(found[2]), int(found[3]))


def time_limit_minutes(seconds: int) -> int:
    """Slurm counts limits in whole minutes: a limit is rounded up, never cut short."""
    return max(1, math.ceil(seconds / 60))


@dataclass(frozen=True, slots=True)
class Where:
    """Where an attempt's files go (on the file system the cluster's nodes share)."""

    attempt_dir: Path
    working_dir: Path

    @property
    def log(self) -> Path:
        return self.attempt_dir / "output.log"


def sbatch_options(
    launch: Launch,
    where: Where,
    *,
    instance: str,
    gpu_models: Mapping[str, str | None],
    partition: str | None,
    account: str | None,
    warn_s: int,
) -> list[str]:
    """Exactly the placement the scheduler chose: these nodes, these GPUs, CPUs and memory."""
    nodes = sorted(launch.placement)
    first = launch.placement[nodes[0]]
    gpus = len(first.gpu_ids)
    options = [
        f"--job-name={job_name(launch.attempt, instance)}",
        f"--comment=aifactory job {launch.job_id} attempt {launch.attempt.number}",
        f"--nodes={len(nodes)}",
        f"--nodelist={','.join(nodes)}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={max(1, len(first.cpu_ids))}",
        f"--mem={first.memory_mb}M",
        f"--time={time_limit_minutes(launch.time_limit_s)}",
        f"--chdir={where.working_dir}",
        f"--output={where.log}",
        "--open-mode=append",
        f"--signal=B:TERM@{warn_s}",  # before the time limit: a chance to checkpoint
        "--no-requeue",  # requeueing is the facility's (a new attempt), never Slurm's own
    ]
    if gpus:
        model = gpu_models.get(nodes[0])
        options.append(f"--gres=gpu:{model}:{gpus}" if model else f"--gres=gpu:{gpus}")
    if partition:
        options.append(f"--partition={partition}")
    if account:
        options.append(f"--account={account}")
    return options


def batch_script(launch: Launch, where: Where) -> str:
    """The batch script: record the start, run the command, pass SIGTERM on, record the end."""
    attempt_dir = shlex.quote(str(where.attempt_dir))
    command = shlex.join(launch.command)
    return f"""#!/bin/bash
# aifactory job {launch.job_id}, attempt {launch.attempt.number} (written by the Slurm executor)
dir={attempt_dir}
record() {{ printf '%s\\n' "$2" > "$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"; }}
record started.json "{{\\"started_at\\": $(date +%s.%N), \\"slurm_job_id\\": ${{SLURM_JOB_ID:-0}}}}"
setsid {command} &
child=$!
trap 'kill -TERM -- "-$child" 2>/dev/null' TERM
wait "$child"
code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
record exit.json "{{\\"exit_code\\": $code, \\"ended_at\\": $(date +%s.%N)}}"
exit "$code"
"""
