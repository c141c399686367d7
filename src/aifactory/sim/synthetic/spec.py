"""The synthetic workload spec: its fields, their checks, and the distributions they define
(the model: `aifactory.sim.synthetic`)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from statistics import NormalDist

from aifactory.sim.limits import DAY, HOUR, LADDER, MAX_FACTOR
from aifactory.sim.traces import TraceError

PEAK_S = 14 * HOUR  # the day cycle's busiest moment; its quietest is 12 h later
NORMAL = NormalDist()
SizeMix = tuple[tuple[int, float], ...]
MIXES: dict[str, SizeMix] = {
    "small": ((1, 0.6), (2, 0.2), (4, 0.1), (8, 0.08), (16, 0.02)),
    "default": ((1, 0.45), (2, 0.15), (4, 0.15), (8, 0.15), (16, 0.05), (32, 0.03), (64, 0.02)),
    "gang": ((1, 0.2), (2, 0.1), (4, 0.1), (8, 0.25), (16, 0.15), (32, 0.12), (64, 0.08)),
}


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    """A synthetic workload. Times in seconds, rates per day; invalid values raise TraceError.

    Facility
      gpus: GPUs in the facility (a whole number of nodes); the load is relative to them.
      gpus_per_node: GPUs per node; a job of more is a gang of ceil(gpus / this) nodes.
    Volume and arrivals
      jobs: jobs to generate.
      load: offered load, Σ GPUs × runtime ÷ (gpus × span of submissions); 1.0 = saturated.
      day_amplitude: day cycle, 0–1: the rate swings by ± this around its mean (peak 14:00).
      week_amplitude: week cycle, 0–1: weekends run at 1 − this times the mean rate, weekdays
        at 1 + 2/5 of it (the week's mean is unchanged).
      burst_rate: bursts per day on average (a burst: one user's sweep of similar jobs at once).
      burst_size: mean jobs in a burst (at least 2; geometric above 2).
    People
      tenants: projects (`t01`, …), each with its share of the facility.
      tenant_skew: Zipf exponent of tenant activity (0: equally busy; 1: t02 half as busy as t01).
      weights: each tenant's share, in tenant order; empty: equal shares. Normalised to sum 1.
      users_per_tenant: users per tenant, equally active.
      kinds_per_user: recurring job kinds per user (kind j used in proportion to 1 / j).
    Sizes
      size_mix: (GPUs, probability) pairs; probabilities are normalised, and sizes larger than
        the facility are left out. Text form `1:0.5;8:0.3;64:0.2`, or `small`, `default`, `gang`.
    Runtimes
      runtime_median_s: median of the lognormal body (seconds).
      runtime_sigma: σ of the lognormal body (of ln seconds; above 0).
      tail_share: share of jobs in the Pareto tail, 0 ≤ x < 1 (0: a plain lognormal).
      tail_alpha: Pareto exponent of the tail (smaller: heavier; at most 1: infinite mean
        before the cap).
      max_runtime_s: no job runs longer (seconds); the longest limit asked is this, rounded up
        the ladder.
      estimate_quality: 0–1, how closely a job repeats its kind's runtime: the share of the
        variance of its runtime's normal score that the kind explains. 1 repeats exactly, 0
        draws independently. Users of predictable kinds ask tighter limits.
    Time limits
      overestimate_max_share: share of users who always ask the longest limit.
      overestimate_median: median factor (≥ 1) a user multiplies the runtime they expect by.
      overestimate_sigma: σ of that factor's logarithm; factors are clipped to [1, 50].
      overestimate_cover: standard spreads (normal-score units) of the kind's runtime above its
        characteristic that a user's expectation covers.
    Topology
      block_nodes: nodes per network block (`b000`, … in node order, the last one possibly
        smaller); 0: the facility declares no topology.
      one_block_share: share of gang submissions (more than one node, at most a block) whose
        jobs require one block, 0–1; the rest prefer one.
    Other
      preemptible_share: share of submissions whose jobs may be preempted, 0–1.
      seed: the random seed: the same spec and seed give the same jobs.
    """

    gpus: int = 256
    gpus_per_node: int = 8
    jobs: int = 20_000
    load: float = 0.85
    day_amplitude: float = 0.5
    week_amplitude: float = 0.3
    burst_rate: float = 2.0
    burst_size: float = 20.0
    tenants: int = 12
    tenant_skew: float = 1.0
    weights: tuple[float, ...] = ()
    users_per_tenant: int = 3
    kinds_per_user: int = 4
    size_mix: SizeMix = MIXES["default"]
    runtime_median_s: float = 1800.0
    runtime_sigma: float = 1.6
    tail_share: float = 0.05
    tail_alpha: float = 1.2
    max_runtime_s: float = 7 * DAY
    estimate_quality: float = 0.6
    overestimate_max_share: float = 0.15
    overestimate_median: float = 2.0
    overestimate_sigma: float = 0.8
    overestimate_cover: float = 1.0
    preemptible_share: float = 0.3
    block_nodes: int = 0
    one_block_share: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        problem = next(_field_problems(self), None) or _rate_problem(self)
        if problem is not None:
            raise TraceError(f"synthetic spec: {problem}")


# ---- validation ----------------------------------------------------------------------------


def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f"must be {low:g} or more"


def _between(low: float, high: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: low <= v <= high), f"must be between {low:g} and {high:g}"


_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "gpus": _at_least(1),
    "gpus_per_node": _at_least(1),
    "jobs": _at_least(1),
    "load": ((lambda v: 0 < v <= 10), "must be above 0 and at most 10"),
    "day_amplitude": _between(0, 1),
    "week_amplitude": _between(0, 1),
    "burst_rate": _at_least(0),
    "burst_size": _at_least(2),
    "tenants": _at_least(1),
    "tenant_skew": _between(0, 10),
    "users_per_tenant": _at_least(1),
    "kinds_per_user": _at_least(1),
    "runtime_median_s": _at_least(1),
    "runtime_sigma": ((lambda v: 0 < v <= 10), "must be above 0 and at most 10"),
    "tail_share": ((lambda v: 0 <= v < 1), "must be 0 or more and below 1"),
    "tail_alpha": ((lambda v: 0 < v <= 10), "must be above 0 and at most 10"),
    "max_runtime_s": _at_least(1),
    "estimate_quality": _between(0, 1),
    "overestimate_max_share": _between(0, 1),
    "overestimate_median": _between(1, MAX_FACTOR),
    "overestimate_sigma": _between(0, 10),
    "overestimate_cover": _between(0, 10),
    "preemptible_share": _between(0, 1),
    "block_nodes": _at_least(0),
    "one_block_share": _between(0, 1),
}


def _field_problems(spec: SyntheticSpec) -> Iterator[str]:
    for key, (fine, reason) in _RULES.items():
        value = getattr(spec, key)
        if not math.isfinite(value) or not fine(value):
            yield f"{key} {reason} (got {value:g})"
    if spec.gpus % spec.gpus_per_node:
        yield f"gpus must be a whole number of {spec.gpus_per_node}-GPU nodes (got {spec.gpus})"
    if spec.weights and len(spec.weights) != spec.tenants:
        yield f"weights must give one share per tenant ({spec.tenants}), got {len(spec.weights)}"
    if any(not 0 < w < math.inf for w in spec.weights):
        yield "weights must all be above 0"
    yield from _mix_problems(spec)
    if spec.one_block_share > 0 and spec.block_nodes == 0:
        yield "one_block_share needs block_nodes (a facility with network blocks)"


def _rate_problem(spec: SyntheticSpec) -> str | None:
    """Bursts alone must not bring more work than the load allows (the fields are valid)."""
    if singles_per_day(spec) > 0:
        return None
    return (
        f"burst_rate × burst_size ({spec.burst_rate * spec.burst_size:g} jobs a day) must "
        f"stay below the {_jobs_per_day(spec):.0f} jobs a day that load {spec.load:g} allows"
    )


def _mix_problems(spec: SyntheticSpec) -> Iterator[str]:
    sizes = [size for size, _ in spec.size_mix]
    if not spec.size_mix or len(set(sizes)) != len(sizes):
        yield "size_mix must name each GPU count once"
    elif any(size < 1 for size in sizes) or any(not 0 <= p < math.inf for _, p in spec.size_mix):
        yield "size_mix needs GPU counts of 1 or more and probabilities of 0 or more"
    elif not usable_mix(spec):
        yield f"size_mix gives no size of at most gpus ({spec.gpus}) a probability above 0"


# ---- the distributions ---------------------------------------------------------------------


def usable_mix(spec: SyntheticSpec) -> SizeMix:
    """The size mix this facility can run, probabilities normalised."""
    fits = [(size, p) for size, p in spec.size_mix if size <= spec.gpus and p > 0]
    total = sum(p for _, p in fits)
    return tuple((size, p / total) for size, p in fits)


def _tail_edge(spec: SyntheticSpec) -> float:
    """The normal score where the Pareto tail takes over (infinite without a tail)."""
    body = 1 - spec.tail_share
    return NORMAL.inv_cdf(body) if body < 1 else math.inf  # a share below 1e-16 is no tail


def runtime_at(spec: SyntheticSpec, score: float) -> float:
    """The runtime (whole seconds, 1 to `max_runtime_s`) at normal score `score`."""
    edge = _tail_edge(spec)
    if score <= edge:
        seconds = spec.runtime_median_s * math.exp(spec.runtime_sigma * score)
    else:
        start = spec.runtime_median_s * math.exp(spec.runtime_sigma * edge)
        beyond = max(NORMAL.cdf(-score), 1e-300) / spec.tail_share
        seconds = start * beyond ** (-1 / spec.tail_alpha)
    return float(min(spec.max_runtime_s, max(1, round(seconds))))


def mean_runtime(spec: SyntheticSpec) -> float:
    """The runtime distribution's mean in seconds (cap included), worked out exactly."""
    median, sigma, cap = spec.runtime_median_s, spec.runtime_sigma, spec.max_runtime_s
    edge = _tail_edge(spec)
    start = median * math.exp(sigma * edge) if math.isfinite(edge) else math.inf
    body_end = math.log(min(start, cap) / median) / sigma
    body = median * math.exp(sigma**2 / 2) * NORMAL.cdf(body_end - sigma)
    body += cap * (NORMAL.cdf(edge) - NORMAL.cdf(body_end))  # body jobs cut at the cap
    if spec.tail_share == 0:
        return body
    if cap <= start:
        return body + spec.tail_share * cap
    ratio, alpha = cap / start, spec.tail_alpha
    capped = 1 + (math.log(ratio) if alpha == 1 else (ratio ** (1 - alpha) - 1) / (1 - alpha))
    return body + spec.tail_share * start * capped


def _mean_gpus(spec: SyntheticSpec) -> float:
    return sum(size * p for size, p in usable_mix(spec))


def _jobs_per_day(spec: SyntheticSpec) -> float:
    return spec.load * spec.gpus * DAY / (_mean_gpus(spec) * mean_runtime(spec))


def singles_per_day(spec: SyntheticSpec) -> float:
    return _jobs_per_day(spec) - spec.burst_rate * spec.burst_size


def rung(seconds: float) -> float:
    """The smallest round limit of the ladder that covers `seconds`; past it, whole days."""
    index = bisect.bisect_left(LADDER, seconds)
    return float(LADDER[index] if index < len(LADDER) else math.ceil(seconds / DAY) * DAY)


def describe(spec: SyntheticSpec) -> str:
    """`key=value,…` of the fields that differ from the defaults (`parse_spec` reads it back)."""
    default = SyntheticSpec()
    changed = [f for f in fields(spec) if getattr(spec, f.name) != getattr(default, f.name)]
    return ",".join(f"{f.name}={_text(getattr(spec, f.name))}" for f in changed) or "defaults"


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return ";".join(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)
