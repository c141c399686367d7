"""The metrics of DESIGN.md §5, computed from one simulation run.

Per job: wait = start − submit; JCT = end − submit; bounded slowdown = max(1, JCT / max(runtime,
10 s)). Fairness, at every sample instant where some job waits (the cluster is contended): each
project's entitlement is its max-min fair share of all GPUs given its demand (GPUs held plus
GPUs waited for — water-filling), and x = GPUs held ÷ entitlement; Jain's index
(Σx)² / (n·Σx²) over the projects with demand, averaged over the contended samples.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence

from aifactory.sim.engine import Finished, Sample, SimResult

BSLD_FLOOR_S = 10.0
KEYS = (
    "avg_jct",
    "p50_jct",
    "p95_jct",
    "p99_jct",
    "avg_wait",
    "p50_wait",
    "p95_wait",
    "p99_wait",
    "avg_bsld",
    "makespan",
    "utilisation",
    "jain_fairness",
    "worst_tenant_wait_ratio",
    "preemptions",
    "lost_gpu_hours",
    "decision_p50_ms",
    "decision_p99_ms",
    "jobs_per_s",
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n·q/100), at least 1
    return ordered[int(rank) - 1]


def summarise(result: SimResult) -> dict[str, float]:
    done = result.finished
    waits = [f.wait for f in done]
    jcts = [f.jct for f in done]
    figures = {
        **_spread("jct", jcts),
        **_spread("wait", waits),
        "avg_bsld": _mean([max(1.0, f.jct / max(f.runtime, BSLD_FLOOR_S)) for f in done]),
        "makespan": _makespan(done),
        "utilisation": utilisation(done, result.total_gpus, result.lost_gpu_s),
        "jain_fairness": jain_fairness(result.samples, result.total_gpus),
        "worst_tenant_wait_ratio": worst_tenant_wait_ratio(done),
        "preemptions": float(result.preemptions),
        "lost_gpu_hours": result.lost_gpu_s / 3600,
        "decision_p50_ms": percentile(result.decision_s, 50) * 1000,
        "decision_p99_ms": percentile(result.decision_s, 99) * 1000,
        "jobs_per_s": len(done) / result.wall_s if result.wall_s > 0 else 0.0,
    }
    return {key: figures[key] for key in KEYS}


def _spread(name: str, values: Sequence[float]) -> dict[str, float]:
    return {
        f"avg_{name}": _mean(values),
        f"p50_{name}": percentile(values, 50),
        f"p95_{name}": percentile(values, 95),
        f"p99_{name}": percentile(values, 99),
    }


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _makespan(done: Sequence[Finished]) -> float:
    if not done:
        return 0.0
    return max(f.end for f in done) - min(f.job.submit for f in done)


def utilisation(done: Sequence[Finished], total_gpus: int, lost_gpu_s: float = 0.0) -> float:
    """Busy GPU-seconds (work later lost to preemption included) ÷ (GPUs × span from first
    submit to last end)."""
    span = _makespan(done)
    if span <= 0 or total_gpus <= 0:
        return 0.0
    return (sum(f.runtime * f.job.gpus for f in done) + lost_gpu_s) / (total_gpus * span)


def water_fill(capacity: float, demands: Mapping[str, float]) -> dict[str, float]:
    """Max-min fair shares: nobody gets more than it asks; the rest is split evenly."""
    shares = {name: 0.0 for name in demands}
    open_ = {name for name, d in demands.items() if d > 0}
    left = capacity
    while open_ and left > 1e-9:
        even = left / len(open_)
        satisfied = {n for n in open_ if demands[n] - shares[n] <= even}
        if not satisfied:
            for name in open_:
                shares[name] += even
            break
        for name in satisfied:
            left -= demands[name] - shares[name]
            shares[name] = demands[name]
        open_ -= satisfied
    return shares


def jain(values: Sequence[float]) -> float:
    if not values or not any(values):
        return 1.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def jain_fairness(samples: Sequence[Sample], total_gpus: int) -> float:
    indices = []
    for sample in samples:
        if not any(sample.waiting.values()):
            continue  # not contended
        projects = sorted(set(sample.running) | set(sample.waiting))  # one order: same sums
        demand = {p: sample.running.get(p, 0) + sample.waiting.get(p, 0) for p in projects}
        entitled = water_fill(total_gpus, demand)
        ratios = [sample.running.get(p, 0) / entitled[p] for p in projects if entitled[p] > 0]
        indices.append(jain(ratios))
    return _mean(indices) if indices else 1.0


def worst_tenant_wait_ratio(done: Sequence[Finished]) -> float:
    overall = _mean([f.wait for f in done])
    if overall <= 0:
        return 1.0
    by_project: dict[str, list[float]] = defaultdict(list)
    for f in done:
        by_project[f.job.project].append(f.wait)
    return max(_mean(w) for w in by_project.values()) / overall
