"""Topology-aware placement against topology-blind, over the synthetic family (issue 22).

Every setting of `aifactory.sim.synthetic.family`, moved onto a facility with network blocks
(default: 1,024 GPUs as 128 eight-GPU nodes in blocks of 16, so a block holds 128 GPUs and the
largest gang, 64 GPUs, fits half a block); with `--one-block-share`, a share of gangs *require*
one block (default: none; every gang only prefers one, so the placement is the scheduler's own
choice). Each workload is replayed under `fairshare` twice: with the blocks (aware) and with
the same nodes stripped of them (blind: placement as before topology). Per run it reports the
share of gangs (jobs on more than one node) inside one block, blocks per gang, how scattered
idle nodes were (`sim.topology`), and the aware run's average and p99 wait over the blind
one's; it checks that no gang that required one block ran across blocks. Targets: ≥ 95 % of
gangs inside one block, average wait ≤ 1.1 × blind.

    .venv/bin/python benchmarks/scheduler_topology.py [--jobs 2000] [--seeds 1,2,3]
        [--gpus 1024] [--block-nodes 16] [--one-block-share 0] [--patience X] [--workers 1]
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

from aifactory.scheduler import schedule
from aifactory.sim.engine import Simulator
from aifactory.sim.metrics import summarise
from aifactory.sim.replay import POLICIES
from aifactory.sim.synthetic import SyntheticSpec, family, generate
from aifactory.sim.topology import topology_figures

ROOT = Path(__file__).resolve().parent.parent
Figures = dict[str, float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--gpus", type=int, default=1024)
    parser.add_argument("--block-nodes", type=int, default=16)
    parser.add_argument("--one-block-share", type=float, default=0.0)
    parser.add_argument("--policy", default="fairshare")
    parser.add_argument(
        "--patience", type=float, default=None, help="fairshare's block_patience (default: its own)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/scheduler_topology.json"
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [
        (
            name,
            replace(
                spec,
                jobs=args.jobs,
                gpus=args.gpus,
                block_nodes=args.block_nodes,
                one_block_share=args.one_block_share,
            ),
            args.policy,
            args.patience,
        )
        for name, spec in family(seeds)
    ]
    began = time.perf_counter()
    runs: dict[str, dict[str, Figures]] = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for name, figures in pool.map(_run, settings):
            runs[name] = figures
            aware, blind = figures["aware"], figures["blind"]
            print(
                f"{name} ({time.perf_counter() - began:.0f} s): inside one block "
                f"{aware['one_block_share']:.3f} (blind {blind['one_block_share']:.3f}), "
                f"avg wait ÷ blind {_ratio(aware['avg_wait'], blind['avg_wait']):.2f}, "
                f"required broken {aware['required_broken']:.0f}",
                flush=True,
            )
    summary = _summary(runs)
    _print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "scheduler_topology",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.platform(),
                "python": platform.python_version(),
                "policy": args.policy,
                "block_patience": args.patience,
                "jobs": args.jobs,
                "seeds": seeds,
                "gpus": args.gpus,
                "block_nodes": args.block_nodes,
                "one_block_share": args.one_block_share,
                "wall_s": time.perf_counter() - began,
                "runs": runs,
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


def _run(
    setting: tuple[str, SyntheticSpec, str, float | None],
) -> tuple[str, dict[str, Figures]]:
    name, spec, policy_name, patience = setting
    policy = POLICIES[policy_name]
    if patience is not None:
        policy = replace(policy, fairshare=replace(policy.fairshare, block_patience=patience))
    work = generate(spec)
    blind_nodes = tuple(replace(node, block=None) for node in work.nodes)
    out = {}
    for label, nodes in (("aware", work.nodes), ("blind", blind_nodes)):
        result = Simulator(work.jobs, nodes, policy, schedule, shares=work.shares).run()
        figures = summarise(result)
        placed = topology_figures(result.finished, work.nodes)  # blocks as they really are
        block = {node.id: node.block for node in work.nodes}
        broken = sum(
            1 for f in result.finished if f.job.one_block and len({block[n] for n in f.nodes}) > 1
        )
        out[label] = {
            "avg_wait": figures["avg_wait"],
            "p99_wait": figures["p99_wait"],
            "utilisation": figures["utilisation"],
            "one_block_share": 1 - placed["cross_block_share"],
            "blocks_per_gang": placed["blocks_per_gang"],
            "idle_scatter": placed["idle_scatter"],
            "required_broken": float(broken),
            "unfinished": float(result.unfinished),
        }
    return name, out


def _ratio(ours: float, base: float) -> float:
    return max(ours, 1.0) / max(base, 1.0)  # a wait of 0 counts as 1 s


def _summary(runs: dict[str, dict[str, Figures]]) -> dict[str, dict[str, float]]:
    """Over every run, and over the gang-heavy settings alone (in the small-heavy ones a gang
    is at most two nodes and nearly always finds one block: they say little)."""
    gangs = {name: run for name, run in runs.items() if "-gang-" in name}
    return {"all runs": _figures(runs), "gang-heavy runs": _figures(gangs)}


def _figures(runs: dict[str, dict[str, Figures]]) -> dict[str, float]:
    inside = [r["aware"]["one_block_share"] for r in runs.values()]
    blind_inside = [r["blind"]["one_block_share"] for r in runs.values()]
    wait = [_ratio(r["aware"]["avg_wait"], r["blind"]["avg_wait"]) for r in runs.values()]
    p99 = [_ratio(r["aware"]["p99_wait"], r["blind"]["p99_wait"]) for r in runs.values()]
    util = [r["aware"]["utilisation"] / r["blind"]["utilisation"] for r in runs.values()]
    aware_wait = sum(r["aware"]["avg_wait"] for r in runs.values())
    blind_wait = sum(r["blind"]["avg_wait"] for r in runs.values())
    return {
        "runs": len(runs),
        "inside_one_block_median": statistics.median(inside),
        "inside_one_block_worst": min(inside),
        "blind_inside_one_block_median": statistics.median(blind_inside),
        "avg_wait_ratio_median": statistics.median(wait),
        "avg_wait_ratio_worst": max(wait),
        "avg_wait_ratio_pooled": aware_wait / blind_wait if blind_wait > 0 else 1.0,
        "p99_wait_ratio_median": statistics.median(p99),
        "p99_wait_ratio_worst": max(p99),
        "utilisation_ratio_worst": min(util),
        "required_broken": sum(r["aware"]["required_broken"] for r in runs.values()),
        "unfinished": sum(r["aware"]["unfinished"] for r in runs.values()),
    }


def _print(summary: dict[str, dict[str, float]]) -> None:
    groups = list(summary)
    print("\n| figure | " + " | ".join(groups) + " |\n|---" * 1 + "|---" * len(groups) + "|")
    for key in summary[groups[0]]:
        print(f"| {key} | " + " | ".join(f"{summary[g][key]:.3f}" for g in groups) + " |")
    for group, figures in summary.items():
        inside, wait = figures["inside_one_block_median"], figures["avg_wait_ratio_median"]
        print(f"  [{'x' if inside >= 0.95 else ' '}] {group}: >= 95 % of gangs inside one block")
        print(f"  [{'x' if wait <= 1.1 else ' '}] {group}: median average wait <= 1.1 x blind")
        kept = figures["required_broken"] == 0
        print(f"  [{'x' if kept else ' '}] {group}: no required block broken")


if __name__ == "__main__":
    main()
