"""Drawing a workload from a `SyntheticSpec`: people and their job kinds, submissions,
arrivals (the model: `aifactory.sim.synthetic`). Three seeded streams, one per stage."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from aifactory.sim.engine import cluster
from aifactory.sim.limits import DAY, MAX_FACTOR
from aifactory.sim.scenarios import Workload
from aifactory.sim.synthetic.spec import (
    PEAK_S,
    SyntheticSpec,
    describe,
    rung,
    runtime_at,
    singles_per_day,
    usable_mix,
)
from aifactory.sim.traces import TraceJob

# ---- people and their job kinds ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    user: str
    tenant: str
    score: float  # normal score of its characteristic runtime
    limit: float  # what its user asks for each of its jobs


def _tenant_names(spec: SyntheticSpec) -> list[str]:
    width = max(2, len(str(spec.tenants)))
    return [f"t{i:0{width}d}" for i in range(1, spec.tenants + 1)]


def _kinds(spec: SyntheticSpec, rng: random.Random) -> tuple[list[_Kind], list[float]]:
    """Every kind of job, with how often it is submitted (cumulative weights)."""
    kinds: list[_Kind] = []
    weights: list[float] = []
    harmonic = sum(1 / j for j in range(1, spec.kinds_per_user + 1))
    for rank, tenant in enumerate(_tenant_names(spec), start=1):
        activity = rank**-spec.tenant_skew / spec.users_per_tenant / harmonic
        for u in range(1, spec.users_per_tenant + 1):
            user = f"{tenant}-u{u}"
            asks_max = rng.random() < spec.overestimate_max_share
            for k in range(1, spec.kinds_per_user + 1):
                score = rng.gauss(0, 1)
                limit = _kind_limit(spec, score, asks_max, rng)
                kinds.append(_Kind(f"{user}-k{k}", user, tenant, score, limit))
                weights.append(activity / k)
    return kinds, _cumulative(weights)


def _kind_limit(spec: SyntheticSpec, score: float, asks_max: bool, rng: random.Random) -> float:
    longest = rung(spec.max_runtime_s)
    median, sigma = math.log(spec.overestimate_median), spec.overestimate_sigma
    factor = min(MAX_FACTOR, max(1.0, rng.lognormvariate(median, sigma)))  # drawn either way
    if asks_max:
        return longest
    q = spec.estimate_quality
    expected = runtime_at(spec, math.sqrt(q) * score + spec.overestimate_cover * math.sqrt(1 - q))
    return min(longest, rung(expected * factor))


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


# ---- submissions ---------------------------------------------------------------------------


def _submissions(
    spec: SyntheticSpec, kinds: list[_Kind], cum: list[float], rng: random.Random
) -> list[list[TraceJob]]:
    """Single jobs and bursts, in submission order, `spec.jobs` jobs in all (unnumbered)."""
    singles, bursts = singles_per_day(spec), spec.burst_rate
    burst_chance = bursts / (singles + bursts)
    mix = usable_mix(spec)
    sizes, size_cum = [s for s, _ in mix], _cumulative([p for _, p in mix])
    out: list[list[TraceJob]] = []
    left = spec.jobs
    while left > 0:
        count = min(left, _burst_length(spec, rng) if rng.random() < burst_chance else 1)
        kind = rng.choices(kinds, cum_weights=cum)[0]
        gpus = rng.choices(sizes, cum_weights=size_cum)[0]
        preemptible = rng.random() < spec.preemptible_share
        one_block = _requires_block(spec, gpus, rng)
        out.append([_job(spec, kind, gpus, preemptible, rng, one_block) for _ in range(count)])
        left -= count
    return out


def _requires_block(spec: SyntheticSpec, gpus: int, rng: random.Random) -> bool:
    """Whether a gang's jobs require one block (no draw without the option: the seed's other
    draws stay as they were)."""
    if spec.one_block_share == 0:
        return False
    nodes = math.ceil(gpus / spec.gpus_per_node)
    return 1 < nodes <= spec.block_nodes and rng.random() < spec.one_block_share


def _burst_length(spec: SyntheticSpec, rng: random.Random) -> int:
    """2 plus a geometric count, `burst_size` on average."""
    extra = spec.burst_size - 2
    if extra <= 0:
        return 2
    return 2 + int(math.log(1 - rng.random()) / math.log(extra / (1 + extra)))


def _job(
    spec: SyntheticSpec,
    kind: _Kind,
    gpus: int,
    preemptible: bool,
    rng: random.Random,
    one_block: bool = False,
) -> TraceJob:
    q = spec.estimate_quality
    runtime = runtime_at(spec, math.sqrt(q) * kind.score + math.sqrt(1 - q) * rng.gauss(0, 1))
    return TraceJob(
        job_id=0,
        submit=0.0,
        duration=runtime,
        gpus=gpus,
        nodes=max(1, math.ceil(gpus / spec.gpus_per_node)),
        project=kind.tenant,
        user=kind.user,
        time_limit=max(kind.limit, rung(runtime)),
        name=kind.name,
        preemptible=preemptible,
        one_block=one_block,
    )


# ---- arrivals ------------------------------------------------------------------------------


def _week_factor(spec: SyntheticSpec, day: int) -> float:
    weekend = day % 7 >= 5  # time 0 is a Monday
    return 1 - spec.week_amplitude if weekend else 1 + 2 * spec.week_amplitude / 5


def _cycle(spec: SyntheticSpec, at: float) -> float:
    """The arrival rate at time `at`, relative to its mean."""
    day = 1 + spec.day_amplitude * math.cos(2 * math.pi * ((at % DAY) - PEAK_S) / DAY)
    return day * _week_factor(spec, int(at // DAY))


def _cycle_integral(spec: SyntheticSpec, span: float) -> float:
    """∫ of `_cycle` from 0 to `span` (seconds): `span` itself over whole weeks."""
    days, rest = divmod(span, DAY)
    whole = sum(_week_factor(spec, d) for d in range(int(days))) * DAY
    turn = 2 * math.pi / DAY
    wave = math.sin(turn * (rest - PEAK_S)) - math.sin(-turn * PEAK_S)
    return whole + _week_factor(spec, int(days)) * (rest + spec.day_amplitude * wave / turn)


def _arrivals(spec: SyntheticSpec, count: int, work: float, rng: random.Random) -> list[float]:
    """`count` submission times whose span makes `work` (GPU-seconds) the offered load."""
    span = work / (spec.gpus * spec.load)
    mean = count / _cycle_integral(spec, span)
    peak = mean * (1 + spec.day_amplitude) * _week_factor(spec, 0)
    times: list[float] = []
    at = 0.0
    while len(times) < count:
        at += rng.expovariate(peak)
        if rng.random() * peak < mean * _cycle(spec, at):
            times.append(float(round(at)))
    return times


# ---- the workload --------------------------------------------------------------------------


def generate(spec: SyntheticSpec) -> Workload:
    """The workload `spec` describes, tenants' shares included; deterministic for its seed."""
    kinds, cum = _kinds(spec, random.Random(f"{spec.seed}:people"))
    submitted = _submissions(spec, kinds, cum, random.Random(f"{spec.seed}:jobs"))
    work = sum(job.gpus * job.duration for group in submitted for job in group)
    times = _arrivals(spec, len(submitted), work, random.Random(f"{spec.seed}:arrivals"))
    stamped = ((job, at) for group, at in zip(submitted, times, strict=True) for job in group)
    jobs = [replace(job, job_id=i, submit=at) for i, (job, at) in enumerate(stamped, start=1)]
    nodes = cluster([spec.gpus_per_node] * (spec.gpus // spec.gpus_per_node), spec.block_nodes)
    return Workload(f"synthetic:{describe(spec)}", jobs, nodes, shares=shares(spec))


def shares(spec: SyntheticSpec) -> dict[str, float]:
    """Each tenant's share of the facility, summing to 1."""
    weights = spec.weights or (1.0,) * spec.tenants
    total = sum(weights)
    return {t: w / total for t, w in zip(_tenant_names(spec), weights, strict=True)}


def offered_load(jobs: Sequence[TraceJob], gpus: int) -> float:
    """Σ GPUs × runtime ÷ (GPUs × time from the first submission to the last)."""
    span = max(j.submit for j in jobs) - min(j.submit for j in jobs)
    return sum(j.gpus * j.duration for j in jobs) / (gpus * span) if span > 0 else math.inf
