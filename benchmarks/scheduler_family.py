"""Scheduler benchmark over a *family* of synthetic workloads, not one trace (issue 22).

Replays every setting of `aifactory.sim.synthetic.family` (load × estimate quality × size mix,
each with several seeds) under `slurm`, `fairshare` and `oracle`, and reports the distribution
of fairshare's ratios: average and p99 wait to slurm's, average wait to the oracle's, Jain's
index and the worst tenant's wait beside slurm's, utilisation to slurm's. Prints a table per
setting (median over seeds) and the distribution over all runs (median, p90, worst), checks
issue 22's targets, writes benchmarks/results/scheduler_family.json and, with --plot, a PNG
of the average-wait ratio per setting.

    .venv/bin/python benchmarks/scheduler_family.py [--jobs 2000] [--seeds 1,2]
        [--workers 2] [--plot benchmarks/results/scheduler_family.png]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aifactory.sim.replay import replay
from aifactory.sim.synthetic import family, generate

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ["slurm", "fairshare", "oracle"]
KEYS = ("avg_wait", "p99_wait", "avg_bsld", "utilisation", "jain_fairness")
KEYS += ("worst_tenant_wait_ratio", "jobs_per_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/scheduler_family.json"
    )
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [(name, replace(spec, jobs=args.jobs)) for name, spec in family(seeds)]
    began = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for name, figures in pool.map(_run, settings):  # in order, each as soon as it is done
            runs.append((name, figures))
            said = ", ".join(f"{k} {v:.3g}" for k, v in ratios(figures).items())
            print(f"{name} ({time.perf_counter() - began:.0f} s): {said}", flush=True)
    summary = distribution([ratios(figures) for _, figures in runs])
    checks = targets(summary)
    _print(runs, summary, checks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "scheduler_family",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "jobs": args.jobs,
                "seeds": seeds,
                "wall_s": time.perf_counter() - began,
                "runs": {name: figures for name, figures in runs},
                "ratios": {name: ratios(figures) for name, figures in runs},
                "distribution": summary,
                "targets": checks,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    if args.plot is not None:
        _plot(runs, args.plot)
        print(f"wrote {args.plot}")


def _run(setting: tuple[str, Any]) -> tuple[str, dict[str, dict[str, float]]]:
    name, spec = setting
    work = generate(spec)
    return name, {
        run.policy: {key: run.figures[key] for key in KEYS} for run in replay(work, POLICIES)
    }


def ratios(figures: dict[str, dict[str, float]]) -> dict[str, float]:
    """Fairshare beside slurm and oracle in one run (a wait of 0 counts as 1 s)."""
    ours, slurm, oracle = figures["fairshare"], figures["slurm"], figures["oracle"]
    return {
        "avg_wait/slurm": _ratio(ours["avg_wait"], slurm["avg_wait"]),
        "p99_wait/slurm": _ratio(ours["p99_wait"], slurm["p99_wait"]),
        "avg_wait/oracle": _ratio(ours["avg_wait"], oracle["avg_wait"]),
        "avg_bsld/slurm": ours["avg_bsld"] / slurm["avg_bsld"],
        "utilisation/slurm": ours["utilisation"] / slurm["utilisation"],
        "jain - slurm": ours["jain_fairness"] - slurm["jain_fairness"],
        "worst tenant/avg": ours["worst_tenant_wait_ratio"],
    }


def _ratio(ours: float, base: float) -> float:
    return max(ours, 1.0) / max(base, 1.0)


def distribution(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, p90 and the worst (highest; lowest for what should be high) of each ratio."""
    out = {}
    for key in rows[0]:
        values = sorted(row[key] for row in rows)
        high_is_good = key in ("utilisation/slurm", "jain - slurm")
        out[key] = {
            "median": statistics.median(values),
            "p90": values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
            if not high_is_good
            else values[round(0.1 * (len(values) - 1))],
            "worst": values[0] if high_is_good else values[-1],
        }
    return out


def targets(summary: dict[str, dict[str, float]]) -> dict[str, bool]:
    """Issue 22's targets over the family."""
    return {
        "median avg wait <= 0.6 x slurm": summary["avg_wait/slurm"]["median"] <= 0.6,
        "every setting avg wait <= 0.9 x slurm": summary["avg_wait/slurm"]["worst"] <= 0.9,
        "every setting avg wait <= 1.3 x oracle": summary["avg_wait/oracle"]["worst"] <= 1.3,
        "every setting p99 wait <= slurm": summary["p99_wait/slurm"]["worst"] <= 1.0,
        "every setting Jain >= slurm": summary["jain - slurm"]["worst"] >= 0.0,
        "every tenant's wait <= 2 x average": summary["worst tenant/avg"]["worst"] <= 2.0,
        "utilisation no worse than slurm": summary["utilisation/slurm"]["worst"] >= 1 - 1e-3,
    }


def _print(
    runs: list[tuple[str, dict[str, dict[str, float]]]],
    summary: dict[str, dict[str, float]],
    checks: dict[str, bool],
) -> None:
    keys = list(summary)
    by_setting: dict[str, list[dict[str, float]]] = {}
    for name, figures in runs:
        by_setting.setdefault(name.rsplit("-s", 1)[0], []).append(ratios(figures))
    print("\n| setting (median of seeds) | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for setting, rows in by_setting.items():
        cells = [f"{statistics.median(r[k] for r in rows):.2f}" for k in keys]
        print(f"| {setting} | " + " | ".join(cells) + " |")
    print("\n| over all runs | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for stat in ("median", "p90", "worst"):
        print(f"| {stat} | " + " | ".join(f"{summary[k][stat]:.2f}" for k in keys) + " |")
    for check, held in checks.items():
        print(f"  [{'x' if held else ' '}] fairshare: {check}")


def _plot(runs: list[tuple[str, dict[str, dict[str, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_setting: dict[str, list[float]] = {}
    for name, figures in runs:
        by_setting.setdefault(name.rsplit("-s", 1)[0], []).append(ratios(figures)["avg_wait/slurm"])
    names = sorted(by_setting)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.boxplot([by_setting[n] for n in names], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.axhline(0.6, color="green", linewidth=0.8, linestyle="--", label="target median 0.6")
    ax.axhline(0.9, color="red", linewidth=0.8, linestyle=":", label="target worst 0.9")
    ax.set_ylabel("fairshare avg wait / slurm's")
    ax.set_title("fairshare vs slurm over the synthetic family (each box: the seeds)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
