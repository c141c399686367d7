"""Sandbox benchmark: what the sandbox adds to a job's start, and to draining many short jobs.

The real local executor, its real supervisors and real jobs, in one run, with the sandbox
(every job: its project's identity, bubblewrap's namespaces, the stage, a control group) and
without it (the baseline: the command as a plain child of the supervisor, as before the
sandbox; `LocalConfig(sandboxed=False)`, which no facility setting reaches).

- start: from `executor.start()` — what the control loop calls right after it commits the job
  ADMITTED — to the first instruction of the command (`date +%s.%N`, its first line of output),
  one job at a time, the two kinds interleaved; p50/p95 and the difference of medians.
- drain: N jobs of `true` through the executor, `--slots` at a time (as the control loop would
  keep them), until all have exited; jobs per second.
- spawn: bubblewrap's own share, in-process (`launcher.spawn` of /bin/true against a plain
  `subprocess.Popen`), without the supervisor's start-up.

    .venv/bin/python benchmarks/sandbox_start.py [--starts 60] [--drain 1000] [--slots 8]

Prints a table and writes benchmarks/results/sandbox_start.json. Run as root (the facility's
shape: an identity per project).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aifactory.executors.base import Attempt, Launch, NodeSlice, Phase  # noqa: E402
from aifactory.executors.local.executor import LocalConfig, LocalExecutor  # noqa: E402
from aifactory.executors.sandbox.check import check  # noqa: E402
from aifactory.executors.sandbox.identity import Identities, IdentityConfig  # noqa: E402
from aifactory.executors.sandbox.job import JobPaths, job_sandbox  # noqa: E402
from aifactory.executors.sandbox.launcher import spawn  # noqa: E402
from aifactory.executors.sandbox.software import host_software  # noqa: E402
from aifactory.executors.sandbox.stage import Stage  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "sandbox_start.json"
KINDS = ("sandbox", "plain")


def executor(root: Path, kind: str, slots: int) -> LocalExecutor:
    config = LocalConfig(
        jobs_dir=root / kind / "jobs", virtual_gpus=0, cpus=slots, sandboxed=kind == "sandbox"
    )
    return LocalExecutor(config)


def launch(job_id: int, command: list[str], slot: int = 0) -> Launch:
    return Launch(
        Attempt(job_id, 1),
        command,
        {},
        None,
        60,
        {"node": NodeSlice([], [slot], 256)},
        project="bench",
        project_id=1,
    )


def wait_exited(made: LocalExecutor, attempts: list[Attempt]) -> None:
    left = set(attempts)
    while left:
        seen = made.poll(left)
        left = {a for a, o in seen.items() if o.phase is not Phase.EXITED}
        if left:
            time.sleep(0.002)


def start_latencies(root: Path, starts: int) -> dict[str, list[float]]:
    """ms from start() to the command's first instruction, one job at a time, interleaved."""
    made = {kind: executor(root, kind, 1) for kind in KINDS}
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n in range(starts):
        for kind in KINDS if n % 2 == 0 else reversed(KINDS):
            job = launch(n + 1, ["/bin/date", "+%s.%N"])
            before = time.time()
            made[kind].start(job)
            wait_exited(made[kind], [job.attempt])
            ran_at = float(made[kind].log_path(job.job_id).read_text().split()[0])
            found[kind].append((ran_at - before) * 1000)
    return found


def drain(root: Path, kind: str, jobs: int, slots: int) -> float:
    """Seconds for `jobs` jobs of `true`, `slots` at a time."""
    made = executor(root / "drain", kind, slots)
    waiting = list(range(1, jobs + 1))
    running: dict[Attempt, int] = {}  # attempt → slot
    began = time.monotonic()
    while waiting or running:
        free = [s for s in range(slots) if s not in running.values()]
        for slot in free[: len(waiting)]:
            job = launch(waiting.pop(0), ["/bin/true"], slot)
            made.start(job)
            running[job.attempt] = slot
        seen = made.poll(list(running))
        for attempt, observed in seen.items():
            if observed.phase is Phase.EXITED:
                del running[attempt]
        time.sleep(0.005)
    return time.monotonic() - began


def spawn_costs(root: Path, rounds: int) -> dict[str, list[float]]:
    """In-process: bubblewrap + stage + identity against a plain Popen of /bin/true (ms)."""
    identity = Identities(IdentityConfig.for_this_process()).of(1, "bench")
    work, tmp = root / "spawn" / "work", root / "spawn" / "tmp"
    for path in (work, tmp):
        path.mkdir(parents=True)
        os.chown(path, identity.uid, identity.gid)
    spec = job_sandbox(identity, host_software(), JobPaths(str(work), str(tmp)))
    stage = Stage.enter() if os.geteuid() == 0 else None  # this process only
    found: dict[str, list[float]] = {"sandbox": [], "plain": []}
    with open(root / "spawn.log", "wb") as log:
        for _ in range(rounds):
            began = time.perf_counter()
            assert spawn(spec, ["/bin/true"], log=log, stage=stage).wait() == 0
            found["sandbox"].append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            assert subprocess.run(["/bin/true"], check=False).returncode == 0
            found["plain"].append((time.perf_counter() - began) * 1000)
    return found


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "mean": statistics.fmean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=60)
    parser.add_argument("--drain", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = check()
    with tempfile.TemporaryDirectory(prefix="aifactory-bench-") as scratch:
        root = Path(scratch)
        starts = start_latencies(root, args.starts)
        drains = {kind: drain(root / kind, kind, args.drain, args.slots) for kind in KINDS}
        spawns = spawn_costs(root, args.starts)
    result = figures(report.describe(), args, starts, drains, spawns)
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def figures(
    sandbox: str,
    args: argparse.Namespace,
    starts: dict[str, list[float]],
    drains: dict[str, float],
    spawns: dict[str, list[float]],
) -> dict[str, Any]:
    start = {kind: summary(values) for kind, values in starts.items()}
    spawn_ms = {kind: summary(values) for kind, values in spawns.items()}
    return {
        "benchmark": "sandbox_start",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, python {platform.python_version()}",
        "sandbox": sandbox,
        "start_ms": start,
        "start_added_ms": start["sandbox"]["p50"] - start["plain"]["p50"],
        "spawn_ms": spawn_ms,
        "spawn_added_ms": spawn_ms["sandbox"]["p50"] - spawn_ms["plain"]["p50"],
        "drain": {
            kind: {
                "jobs": args.drain,
                "slots": args.slots,
                "seconds": s,
                "jobs_per_s": args.drain / s,
            }
            for kind, s in drains.items()
        },
        "starts": args.starts,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"sandbox: {result['sandbox']}")
    print(f"{'':<34}{'sandbox':>12}{'plain':>12}{'added':>12}")
    start, spawn_ms = result["start_ms"], result["spawn_ms"]
    for label, block, added in (
        ("start → command runs, p50 (ms)", start, result["start_added_ms"]),
        ("bubblewrap spawn alone, p50 (ms)", spawn_ms, result["spawn_added_ms"]),
    ):
        print(f"{label:<34}{block['sandbox']['p50']:>12.1f}{block['plain']['p50']:>12.1f}"
              f"{added:>12.1f}")  # fmt: skip
    print(f"{'start → command runs, p95 (ms)':<34}{start['sandbox']['p95']:>12.1f}"
          f"{start['plain']['p95']:>12.1f}")  # fmt: skip
    drain_block = result["drain"]
    jobs = drain_block["sandbox"]["jobs"]
    print(f"{f'drain of {jobs} jobs (jobs/s)':<34}{drain_block['sandbox']['jobs_per_s']:>12.1f}"
          f"{drain_block['plain']['jobs_per_s']:>12.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
