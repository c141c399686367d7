"""Capacity planning: the same workload on facilities of several sizes.

For each size (GPUs, in 8-GPU nodes) and policy: average and p99 wait, utilisation, and the
capital cost at a given price per GPU — "is this budget enough?" as a curve, not a guess.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aifactory.sim.engine import cluster
from aifactory.sim.replay import replay
from aifactory.sim.scenarios import Workload
from aifactory.sim.traces import GPUS_PER_NODE


def sweep(
    work: Workload, sizes: list[int], policies: list[str], gpu_cost_eur: float | None = None
) -> list[dict[str, Any]]:
    rows = []
    for gpus in sizes:
        sized = replace(work, nodes=cluster([GPUS_PER_NODE] * max(1, gpus // GPUS_PER_NODE)))
        for run in replay(sized, policies):
            rows.append(
                {
                    "gpus": gpus,
                    "policy": run.policy,
                    "avg_wait_h": run.figures["avg_wait"] / 3600,
                    "p99_wait_h": run.figures["p99_wait"] / 3600,
                    "utilisation": run.figures["utilisation"],
                    "unfinished": run.result.unfinished,
                    "capital_eur": gpus * gpu_cost_eur if gpu_cost_eur is not None else None,
                }
            )
    return rows
