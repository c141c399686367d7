"""User time limits for traces that recorded none: one seeded model, the same for every policy.

Users over-estimate, and they ask for round numbers (Tsafrir, Etsion & Feitelson, "Modeling User
Runtime Estimates", JSSPP 2005: requests cluster on a few round values; most jobs use a small
fraction of what they ask). The model: draw an over-estimation factor f ~ LogNormal(μ=ln 3,
σ=0.8), clipped to [1, 50]; the limit is the smallest round value on `LADDER` that is at least
duration × f. A job longer than the ladder's top (7 days) gets its duration rounded up to whole
days: the facility it ran on let it finish, so its limit covered it. Deterministic for a given
seed and trace.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import replace

from aifactory.sim.traces import TraceJob

MINUTE, HOUR, DAY = 60, 3600, 86400
LADDER = (
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    4 * HOUR,
    6 * HOUR,
    8 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    4 * DAY,
    5 * DAY,
    7 * DAY,
)
MU, SIGMA, MAX_FACTOR = math.log(3.0), 0.8, 50.0


def user_limit(duration: float, rng: random.Random) -> float:
    factor = min(MAX_FACTOR, max(1.0, rng.lognormvariate(MU, SIGMA)))
    wanted = max(duration * factor, 1.0)
    index = bisect.bisect_left(LADDER, wanted)
    if index < len(LADDER):
        return float(LADDER[index])
    return float(max(LADDER[-1], math.ceil(duration / DAY) * DAY))


def with_limits(jobs: list[TraceJob], seed: int = 1) -> list[TraceJob]:
    """Give every job without a recorded limit one from the model; recorded limits stay."""
    rng = random.Random(seed)
    out = []
    for job in jobs:
        limit = user_limit(job.duration, rng)  # drawn for every job: same stream per trace
        out.append(job if job.time_limit is not None else replace(job, time_limit=limit))
    return out
