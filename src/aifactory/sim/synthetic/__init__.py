"""Synthetic workloads: seeded, documented job streams for the trace-replay simulator.

A `SyntheticSpec` describes a facility and the people who use it; `generate(spec)` draws a
`Workload` from it, the same one for the same spec (seed included), with each tenant's share.
The model, in the order it is drawn:

1. **People.** `tenants` projects `t01`, `t02`, … submit with Zipf-like activity (tenant i in
   proportion to 1 / i^`tenant_skew`); each has `users_per_tenant` users (`t01-u1`, equally
   active), each with `kinds_per_user` recurring job kinds (`t01-u1-k1`, the job's `name`; kind
   j in proportion to 1 / j). A kind has a characteristic runtime and a time limit its user asks
   for every job of it.
2. **Submissions.** A submission is one job or a burst (one user submitting `burst_size` jobs of
   one kind and size at once: a sweep). Sizes come from `size_mix`; a job of more GPUs than a
   node holds is a gang over whole nodes.
3. **Runtimes** follow a lognormal body spliced to a Pareto tail, capped (`runtime_*`,
   `tail_*`). A job's normal score is `√q·kind + √(1−q)·noise` (q = `estimate_quality`, the
   share of the score's variance its kind explains) mapped through that distribution: every
   job has the same runtime distribution whatever q, and q says how closely a job repeats its
   kind (1: exactly; 0: an independent draw).
4. **Time limits.** Users ask round values (`limits.LADDER`): the kind's runtime at
   `overestimate_cover` standard spreads above its characteristic, times a per-kind factor
   (lognormal, `overestimate_*`), rounded up; a share of users always ask the maximum. A job
   that would outrun its kind's limit gets the rung that covers it, so every job ends by itself
   and every policy sees the same work.
5. **Arrivals.** A non-homogeneous Poisson process (thinning) with a day cycle peaking at 14:00
   and a week cycle (weekends quieter), starting on a Monday at 00:00 (time 0). Its rate is set
   from the work actually drawn (Σ GPUs × runtime), so the offered load — that work ÷ (GPUs ×
   span of submissions) — is `load` up to the arrival process's own noise.

The scheduler learns runtimes by (user, project, time limit) (`scheduler/estimates.py`): a kind
keeps one limit, so a user's history of a kind is what it learns from.

`spec.py` holds the spec and its distributions, `generate.py` draws workloads, `text.py` names
the family of settings and reads specs from text.
"""

from aifactory.sim.synthetic.generate import generate, offered_load, shares
from aifactory.sim.synthetic.spec import (
    MIXES,
    SyntheticSpec,
    describe,
    mean_runtime,
    runtime_at,
)
from aifactory.sim.synthetic.text import family, parse_spec

__all__ = [
    "MIXES",
    "SyntheticSpec",
    "describe",
    "family",
    "generate",
    "mean_runtime",
    "offered_load",
    "parse_spec",
    "runtime_at",
    "shares",
]
