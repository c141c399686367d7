"""Scheduler benchmark: replay the trace scenarios under every policy in one run.

Prints one markdown table per scenario (figures, and each one's ratio to `slurm`, the
baseline), checks issue #3's targets for `fairshare`, and writes
benchmarks/results/scheduler.json (DESIGN.md §5 keys per policy, plus wall seconds and the
target checks). Scenarios: itp-cluster04 and itp-merged (shipped); openb when --openb-dir is
given.

    .venv/bin/python benchmarks/scheduler.py [--scenarios itp-cluster04,itp-merged]
        [--policies fifo,easy,slurm,fairshare,oracle]
        [--openb-dir ../shared/traces/alibaba_openb_2023]
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aifactory.sim.replay import replay, report
from aifactory.sim.scenarios import workload

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", default="itp-cluster04,itp-merged")
    parser.add_argument("--policies", default="fifo,easy,slurm,fairshare,oracle")
    parser.add_argument("--openb-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scheduler.json")
    args = parser.parse_args()
    names = args.policies.split(",")
    scenarios = args.scenarios.split(",") + (["openb"] if args.openb_dir else [])
    results = []
    for scenario in scenarios:
        work = workload(scenario, openb_dir=args.openb_dir)
        runs = replay(work, names)
        result = report(work, runs)
        for run in runs:
            result["policies"][run.policy]["wall_s"] = run.result.wall_s
        result["targets"] = targets(result["policies"], merged=scenario == "itp-merged")
        results.append(result)
        _print(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "scheduler",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "scenarios": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


COLUMNS = (  # key, heading, scale
    ("avg_wait", "avg wait h", 1 / 3600),
    ("p99_wait", "p99 wait h", 1 / 3600),
    ("avg_bsld", "avg bsld", 1.0),
    ("avg_jct", "avg JCT h", 1 / 3600),
    ("utilisation", "util", 1.0),
    ("jain_fairness", "Jain", 1.0),
    ("worst_tenant_wait_ratio", "worst/avg wait", 1.0),
    ("preemptions", "preemptions", 1.0),
    ("decision_p99_ms", "decision p99 ms", 1.0),
    ("wall_s", "replay s", 1.0),
)


def targets(policies: dict[str, Any], merged: bool) -> dict[str, bool]:
    """Issue #3's targets for fairshare against slurm (and oracle), as pass/fail."""
    if not {"fairshare", "slurm"} <= set(policies):
        return {}
    ours, base = policies["fairshare"], policies["slurm"]
    checks = {
        "avg_wait <= 0.5 x slurm": ours["avg_wait"] <= 0.5 * base["avg_wait"],
        "avg_bsld <= 0.5 x slurm": ours["avg_bsld"] <= 0.5 * base["avg_bsld"],
        "p99_wait <= slurm": ours["p99_wait"] <= base["p99_wait"],
        "avg_jct <= slurm": ours["avg_jct"] <= base["avg_jct"],
        "utilisation >= slurm": ours["utilisation"] >= base["utilisation"] - 1e-9,
    }
    if "oracle" in policies:
        checks["avg_wait <= 2 x oracle"] = ours["avg_wait"] <= 2 * policies["oracle"]["avg_wait"]
    if merged:
        checks["jain >= slurm"] = ours["jain_fairness"] >= base["jain_fairness"]
        checks["worst project <= 3 x average wait"] = ours["worst_tenant_wait_ratio"] <= 3.0
    return checks


def _print(result: dict[str, Any]) -> None:
    print(f"\n{result['trace']}: {result['jobs']} jobs on {result['gpus']} GPUs")
    print("| policy | " + " | ".join(heading for _, heading, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    policies = result["policies"]
    base = policies.get("slurm")
    for name, figures in policies.items():
        cells = []
        for key, _, scale in COLUMNS:
            value = figures[key]
            cell = f"{value * scale:.3g}" if abs(value * scale) < 1000 else f"{value * scale:.0f}"
            if base and base.get(key) and key not in ("wall_s", "preemptions"):
                cell += f" ({value / base[key]:.2f})"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    for check, held in result["targets"].items():
        print(f"  [{'x' if held else ' '}] fairshare: {check}")


if __name__ == "__main__":
    main()
