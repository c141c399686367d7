"""Scheduler benchmark: replay the trace scenarios under every policy in one run.

Prints one table per scenario and writes benchmarks/results/scheduler.json (DESIGN.md §5 keys
per policy). Scenarios: itp-cluster04 and itp-merged (shipped); openb when --openb-dir is given.

    .venv/bin/python benchmarks/scheduler.py [--scenarios itp-cluster04,itp-merged]
        [--policies fifo,easy] [--openb-dir ../shared/traces/alibaba_openb_2023]
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from aifactory.sim.replay import POLICIES, replay, report
from aifactory.sim.scenarios import workload

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", default="itp-cluster04,itp-merged")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--openb-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scheduler.json")
    args = parser.parse_args()
    names = args.policies.split(",")
    scenarios = args.scenarios.split(",") + (["openb"] if args.openb_dir else [])
    results = []
    for scenario in scenarios:
        work = workload(scenario, openb_dir=args.openb_dir)
        results.append(report(work, replay(work, names)))
        _print(results[-1])
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


def _print(result: dict[str, object]) -> None:
    print(f"\n{result['trace']}: {result['jobs']} jobs on {result['gpus']} GPUs")
    print(
        f"{'policy':<8} {'avg wait h':>10} {'p99 wait h':>10} {'avg bsld':>9} "
        f"{'util':>6} {'jain':>6} {'worst/avg':>9} {'dec p99 ms':>10} {'jobs/s':>8}"
    )
    policies = result["policies"]
    assert isinstance(policies, dict)
    for name, f in policies.items():
        print(
            f"{name:<8} {f['avg_wait'] / 3600:>10.2f} {f['p99_wait'] / 3600:>10.2f} "
            f"{f['avg_bsld']:>9.2f} {f['utilisation']:>6.3f} {f['jain_fairness']:>6.3f} "
            f"{f['worst_tenant_wait_ratio']:>9.2f} {f['decision_p99_ms']:>10.2f} "
            f"{f['jobs_per_s']:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
