"""CLI start-up benchmark: what `aifactory jobs --json` costs against curl on the same endpoint.

Starts a real facility (`python -m aifactory up`, SQLite, admission paused so the jobs stay
PENDING), submits a few jobs, then runs, interleaved, N times each, every one as a fresh
process with its output captured:

- cli: `aifactory jobs --json` (the installed entry point), the command a user types;
- curl: `curl -s -H "Authorization: Bearer …" URL/api/v1/jobs?limit=50`, the same request
  (the CLI's default limit) with no Python at all;
- python: `python -c pass`, the interpreter's own start-up, which no Python CLI can avoid.

It prints p50/p95 of each and the ratio cli / (curl + python) at p50 — the goal is at most 2 —
and writes benchmarks/results/cli_startup.json.

    .venv/bin/python benchmarks/cli_startup.py [--runs 40] [--jobs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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

from tests.e2e.process import FacilityProcess  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cli_startup.json"
TARGET_RATIO = 2.0


def commands(url: str, token: str) -> dict[str, list[str]]:
    """What each kind runs; the CLI through its entry point where pip installed one."""
    entry = Path(sys.executable).with_name("aifactory")
    cli = [str(entry)] if entry.exists() else [sys.executable, "-m", "aifactory"]
    curl = shutil.which("curl")
    assert curl, "curl is needed for the baseline"
    return {
        "cli": [*cli, "jobs", "--json"],
        "curl": [
            curl,
            "-sf",
            "-H",
            f"Authorization: Bearer {token}",
            f"{url}/api/v1/jobs?limit=50",
        ],
        "python": [sys.executable, "-c", "pass"],
    }


def wall_ms(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    took = (time.perf_counter() - began) * 1000
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr.decode()[-500:]}"
    return took


def measure(
    kinds: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, list[float]]:
    """ms per run, the kinds interleaved so that a busy moment falls on all of them alike."""
    for _ in range(warmup):
        for command in kinds.values():
            wall_ms(command, env)
    found: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind, command in kinds.items():
            found[kind].append(wall_ms(command, env))
    return found


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


def submitted_jobs(facility: FacilityProcess, jobs: int) -> int:
    with facility.client() as api:
        for n in range(jobs):
            api.submit(["sleep", "60"], name=f"bench-{n}", cpus=1, memory_mb=256)
        return len(api.jobs(limit=1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5, help="jobs submitted before measuring")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aifactory-bench-") as scratch:
        work = Path(scratch)
        facility = FacilityProcess(work, f"sqlite:///{work / 'bench.db'}", virtual_gpus=8)
        facility.args += ["--paused"]
        facility.start()
        try:
            assert facility.token is not None
            listed = submitted_jobs(facility, args.jobs)
            env = {
                **os.environ,
                "AIFACTORY_URL": facility.url,
                "AIFACTORY_TOKEN": facility.token,
                "AIFACTORY_CONFIG": str(work / "no-cli-config.json"),
            }
            kinds = commands(facility.url, facility.token)
            found = measure(kinds, env, args.runs, args.warmup)
        finally:
            facility.stop()
    result = figures(found, args, listed)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def figures(found: dict[str, list[float]], args: argparse.Namespace, listed: int) -> dict[str, Any]:
    ms = {kind: summary(values) for kind, values in found.items()}
    floor = ms["curl"]["p50"] + ms["python"]["p50"]
    return {
        "benchmark": "cli_startup",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, python {platform.python_version()}",
        "runs": args.runs,
        "jobs_listed": listed,
        "wall_ms": ms,
        "floor_p50_ms": round(floor, 1),
        "ratio_p50": round(ms["cli"]["p50"] / floor, 2),
        "target": {"ratio_p50": TARGET_RATIO},
    }


def print_table(result: dict[str, Any]) -> None:
    labels = {
        "cli": "aifactory jobs --json",
        "curl": "curl, same request",
        "python": "python -c pass",
    }
    print(f"{'wall time (ms)':<26}{'p50':>10}{'p95':>10}")
    for kind, label in labels.items():
        block = result["wall_ms"][kind]
        print(f"{label:<26}{block['p50']:>10.1f}{block['p95']:>10.1f}")
    print(
        f"cli / (curl + python) at p50: {result['ratio_p50']:.2f} "
        f"(target ≤ {result['target']['ratio_p50']:.0f}; {result['runs']} runs each, "
        f"{result['jobs_listed']} jobs listed)"
    )


if __name__ == "__main__":
    main()
