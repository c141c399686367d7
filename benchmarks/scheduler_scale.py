"""Scheduler benchmark at JUPITER scale (issue 22): how fast the simulator replays a facility
of 24,000 GPUs (6,000 nodes of 4) and a million jobs from the synthetic generator.

Replays one workload under `slurm` and `fairshare`, each under a wall-clock cap: a policy that
hits it stops there and reports the jobs finished so far, their rate, and — labelled as such —
the time the whole workload would take at that rate. Prints a table and writes
benchmarks/results/scheduler_scale.json (machine, command, jobs, GPUs, wall seconds, jobs/s,
decision p50/p99 ms, completed or capped). The target: under 10 minutes per policy.

    .venv/bin/python benchmarks/scheduler_scale.py [--jobs 1000000] [--max-wall-s 600]
        [--policies slurm,fairshare] [--spec KEY=VALUE,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aifactory.sim.metrics import summarise
from aifactory.sim.replay import PolicyRun, replay
from aifactory.sim.scenarios import Workload
from aifactory.sim.synthetic import generate, parse_spec

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 600.0  # issue 22: a JUPITER-class replay in under 10 minutes per policy
# 4-GPU nodes: most jobs fit in one node, gangs reach 256 nodes (1,024 GPUs).
MIX = "1:0.25;2:0.1;4:0.25;8:0.15;16:0.1;32:0.07;64:0.04;128:0.025;256:0.01;1024:0.005"
SPEC = f"gpus=24000,gpus_per_node=4,tenants=40,size_mix={MIX}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--max-wall-s", type=float, default=TARGET_S)
    parser.add_argument("--policies", default="slurm,fairshare")
    parser.add_argument("--spec", default=SPEC, help="synthetic spec (jobs= comes from --jobs)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/scheduler_scale.json"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    work = generate(parse_spec(f"{args.spec},jobs={args.jobs}"))
    generated_s = time.perf_counter() - began
    gpus = sum(n.capacity.gpus for n in work.nodes)
    print(
        f"{len(work.jobs)} jobs, {gpus} GPUs, {len(work.nodes)} nodes ({generated_s:.0f} s)",
        flush=True,
    )
    runs = _replay(work, args.policies.split(","), args.max_wall_s)
    rows = [_row(run, cpu_s, len(work.jobs)) for run, cpu_s in runs]
    _print(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_report(args, work, generated_s, rows), indent=2) + "\n")
    print(f"wrote {args.out}")


class Pace:
    """Progress callback: a line every 30 s, so a long run shows its rate as it goes."""

    def __init__(self) -> None:
        self.began, self.said, self.done = time.perf_counter(), 0.0, 0

    def __call__(self, policy: str, finished: int) -> None:
        self.done += finished
        spent = time.perf_counter() - self.began
        if spent - self.said >= 30:
            self.said = spent
            print(
                f"  {policy}: {self.done} jobs in {spent:.0f} s ({self.done / spent:.0f}/s)",
                flush=True,
            )


def _replay(
    work: Workload, policies: list[str], max_wall_s: float
) -> list[tuple[PolicyRun, float]]:
    """Each run with the CPU seconds it took: the machine is shared, so wall time alone
    would charge the replay for its neighbours' work."""
    runs = []
    for name in policies:
        began = time.process_time()
        (run,) = replay(work, [name], Pace(), max_wall_s=max_wall_s)
        runs.append((run, time.process_time() - began))
    return runs


def _row(run: PolicyRun, cpu_s: float, jobs: int) -> dict[str, Any]:
    result, figures = run.result, summarise(run.result)
    finished = len(result.finished)
    rate = finished / result.wall_s if result.wall_s > 0 else 0.0
    return {
        "policy": run.policy,
        "completed": not result.capped,
        "jobs_finished": finished,
        "wall_s": result.wall_s,
        "jobs_per_s": rate,
        "cpu_s": cpu_s,
        "jobs_per_cpu_s": finished / cpu_s if cpu_s > 0 else 0.0,
        # At the rate so far: an extrapolation whenever the run was capped.
        "whole_workload_s": result.wall_s if not result.capped else jobs / rate if rate else None,
        "extrapolated": result.capped,
        "million_jobs_s": 1e6 / rate if rate else None,  # extrapolated unless jobs = 1,000,000
        "decision_calls": len(result.decision_s),
        "decision_p50_ms": figures["decision_p50_ms"],
        "decision_p99_ms": figures["decision_p99_ms"],
        "avg_wait_h": figures["avg_wait"] / 3600,
        "utilisation": figures["utilisation"],
    }


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| policy | done? | jobs finished | wall s | jobs/s | CPU s | jobs/CPU s | all jobs, min "
        "| decision p50 ms | p99 ms |"
    )
    print("|---" * 10 + "|")
    for row in rows:
        said = _minutes(row["whole_workload_s"], extrapolated=row["extrapolated"])
        print(
            f"| {row['policy']} | {'completed' if row['completed'] else 'capped'} | "
            f"{row['jobs_finished']} | {row['wall_s']:.0f} | {row['jobs_per_s']:.0f} | "
            f"{row['cpu_s']:.0f} | {row['jobs_per_cpu_s']:.0f} | {said} | "
            f"{row['decision_p50_ms']:.2f} | {row['decision_p99_ms']:.1f} |"
        )
    for row in rows:
        million = row["million_jobs_s"]
        held = million is not None and million < TARGET_S
        print(f"  [{'x' if held else ' '}] {row['policy']}: 1,000,000 jobs in 10 min at this rate")


def _minutes(seconds: float | None, *, extrapolated: bool) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 60:.1f}" + (" (extrapolated)" if extrapolated else "")


def _report(
    args: argparse.Namespace, work: Workload, generated_s: float, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "benchmark": "scheduler_scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "spec": f"{args.spec},jobs={args.jobs}",
        "jobs": len(work.jobs),
        "gpus": sum(n.capacity.gpus for n in work.nodes),
        "nodes": len(work.nodes),
        "generate_s": generated_s,
        "max_wall_s": args.max_wall_s,
        "target_s": TARGET_S,
        "policies": {row["policy"]: row for row in rows},
    }


if __name__ == "__main__":
    main()
