"""Decision cost: p50/p99 wall time of one `schedule()` call on a large, busy facility.

1,000 nodes × 8 GPUs, about 90% of GPUs held by running jobs, 10,000 pending jobs of mixed
sizes from ten projects with decayed usage and a runtime history of 5,000 finished jobs (what
the live snapshot carries; seeded). Printed and written to
benchmarks/results/decision_cost.json.

    .venv/bin/python benchmarks/decision_cost.py [--calls 30]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from aifactory.domain.resources import Resources
from aifactory.scheduler import NodeView, PendingJob, RunningJob, Snapshot, schedule
from aifactory.scheduler.estimates import RuntimeHistory
from aifactory.scheduler.snapshot import ProjectView
from aifactory.sim.metrics import percentile
from aifactory.sim.replay import POLICIES

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 1, 1, 1, 2, 4, 8, 16, 32, 64)


def busy_facility(nodes: int, pending: int, seed: int) -> Snapshot:
    rng = random.Random(seed)
    views = tuple(NodeView(f"n{i:04d}", Resources(8, 72, 1_000_000), "h100") for i in range(nodes))
    running = []
    for i, node in enumerate(views):
        held = rng.choice((8, 8, 8, 7, 6, 4))
        if held:
            running.append(
                RunningJob(
                    100_000 + i,
                    f"p{i % 10}",
                    {node.id: Resources(held, held, 1)},
                    started_at=rng.uniform(0, 3600),
                    time_limit_s=rng.choice((3600, 14400, 86400)),
                    user="user",
                )
            )
    queue = []
    for j in range(pending):
        gpus = rng.choice(SIZES)
        nodes_needed = max(1, gpus // 8)
        queue.append(
            PendingJob(
                j,
                f"p{j % 10}",
                submitted_at=rng.uniform(0, 7200),
                per_node=Resources(min(gpus, 8), min(gpus, 8), 1),
                nodes=nodes_needed,
                time_limit_s=rng.choice((600, 3600, 14400, 86400)),
                user="user",
            )
        )
    history = RuntimeHistory()
    for _ in range(5000):
        limit = rng.choice((600, 3600, 14400, 86400))
        history.record("user", f"p{rng.randrange(10)}", limit, limit * rng.uniform(0.05, 1.0))
    projects = {f"p{i}": ProjectView(f"p{i}", usage=rng.uniform(0, 1e7)) for i in range(10)}
    return Snapshot(views, tuple(running), tuple(queue), projects=projects, runtimes=history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=10_000)
    args = parser.parse_args()
    snapshot = busy_facility(args.nodes, args.pending, seed=1)
    results = {}
    for name, policy in POLICIES.items():
        times = []
        for _ in range(args.calls):
            began = time.perf_counter()
            schedule(snapshot, policy, now=7200.0)
            times.append(time.perf_counter() - began)
        results[name] = {
            "p50_ms": round(percentile(times, 50) * 1000, 2),
            "p99_ms": round(percentile(times, 99) * 1000, 2),
        }
        print(
            f"{name:<9} p50 {results[name]['p50_ms']:8.2f} ms   p99 "
            f"{results[name]['p99_ms']:8.2f} ms  ({args.pending} pending, {args.nodes} nodes)"
        )
    out = ROOT / "benchmarks/results/decision_cost.json"
    out.write_text(
        json.dumps(
            {
                "nodes": args.nodes,
                "pending": args.pending,
                "calls": args.calls,
                "policies": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
