"""Replay one workload under several policies and collect DESIGN.md §5 figures for each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aifactory.scheduler import NAMED, Policy, schedule
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.sim.engine import SimResult, Simulator
from aifactory.sim.metrics import summarise
from aifactory.sim.scenarios import Workload

# The live policies under their live names, and the simulator-only oracle.
POLICIES: dict[str, Policy] = {**NAMED, **SIM_ONLY}


@dataclass
class PolicyRun:
    policy: str
    result: SimResult
    figures: dict[str, float]


def replay(
    work: Workload,
    policies: list[str],
    progress: Callable[[str, int], None] | None = None,
    *,
    max_wall_s: float | None = None,
) -> list[PolicyRun]:
    """Each policy over the workload; one that runs past `max_wall_s` stops there (capped)."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(POLICIES)}")
    runs = []
    for name in policies:
        tick = (lambda n, name=name: progress(name, n)) if progress else None
        result = Simulator(
            work.jobs,
            work.nodes,
            POLICIES[name],
            schedule,
            progress=tick,
            shares=work.shares,
            max_wall_s=max_wall_s,
        ).run()
        runs.append(PolicyRun(name, result, summarise(result)))
    return runs


def report(work: Workload, runs: list[PolicyRun]) -> dict[str, Any]:
    """The JSON of DESIGN.md §5: one object per policy under "policies"."""
    return {
        "trace": work.name,
        "jobs": len(work.jobs),
        "gpus": sum(n.capacity.gpus for n in work.nodes),
        "nodes": len(work.nodes),
        "policies": {
            run.policy: {**run.figures, "unfinished": run.result.unfinished} for run in runs
        },
    }
