"""How many replicas an inference endpoint should run, and which to start or stop: pure.

Load is read the way Little's law gives it: the seconds requests spent at the gateway (queued
and served) that ended in a window, divided by the window, is the number of requests in flight
on average. An endpoint wants enough replicas for that many at its `concurrency` each, over a
short window (it scales up within a minute) and over `idle_timeout_s` (it scales down only
when that whole time was quiet: no flapping), the more of the two, within [min, max]; with
`min` 0 it keeps one while requests came within `idle_timeout_s` (or a request is waiting for
a cold start) and none after.

Rules, in the order `scale` applies them:
1. Replicas up to `min` are not preemptible (they must serve); those above are, so training
   may reclaim them. A new replica is not preemptible while fewer than `min` are live.
2. A replica that ended (failed, killed, its node lost) is replaced: the endpoint heals. While
   replicas keep failing (`MAX_FAILURES` in `FAILURE_WINDOW_S`) none is started; the endpoint
   says why (`trouble`), and tries again once the failures are older.
3. A replica nearing its time limit (within `rotate_s` of it) is retiring: it serves on, but
   does not count, so its successor is started; once enough of the others run, the retiring
   one is drained (rule 4) before its limit would cut its requests.
4. Scaling down drains one replica at a time, a preemptible one first and the newest first: the
   gateway stops sending it requests at once, and it is stopped `DRAIN_S` later (SIGTERM: the
   engine finishes what it has in flight before it exits). A waiting replica (not started) is
   withdrawn at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DRAIN_S = 5.0  # > the gateway's route cache (1 s): no new request reaches a drained replica
MAX_FAILURES = 5
FAILURE_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class Bounds:
    min_replicas: int
    max_replicas: int
    concurrency: int  # requests one replica serves at once
    idle_timeout_s: float
    rotate_s: float = 0.0  # a replica this close to its time limit is replaced (rule 3)


@dataclass(frozen=True, slots=True)
class ReplicaNow:
    job_id: int
    started: bool  # running (or being started): it may hold requests
    preemptible: bool
    draining_since: float | None = None
    ends_at: float | None = None  # when its time limit runs out (a started one)


@dataclass(frozen=True, slots=True)
class Load:
    windows: tuple[tuple[float, float], ...]  # (busy_s, window_s): gateway seconds of the
    # requests that ended in the last window_s
    last_request_at: float | None  # the last request that ended, ever
    wanted_at: float | None  # a request found no replica running (a cold start)
    failures: int = 0  # replicas that failed in the last FAILURE_WINDOW_S


@dataclass(frozen=True, slots=True)
class Scaling:
    wanted: int
    start: tuple[bool, ...] = ()  # one per replica to start: whether it is preemptible
    drain: tuple[int, ...] = ()  # job ids to stop sending requests to
    stop: tuple[int, ...] = ()  # job ids to stop now (drained, or never started)
    trouble: str | None = None


def wanted_replicas(bounds: Bounds, load: Load, now: float) -> int:
    in_flight = max((busy / window for busy, window in load.windows if window > 0), default=0.0)
    need = math.ceil(in_flight / max(bounds.concurrency, 1) - 1e-9)
    recent = [t for t in (load.last_request_at, load.wanted_at) if t is not None]
    if recent and now - max(recent) < bounds.idle_timeout_s:
        need = max(need, 1)
    return min(max(need, bounds.min_replicas), bounds.max_replicas)


def scale(bounds: Bounds, replicas: list[ReplicaNow], load: Load, now: float) -> Scaling:
    wanted = wanted_replicas(bounds, load, now)
    drained = tuple(
        r.job_id
        for r in replicas
        if r.draining_since is not None and now - r.draining_since >= DRAIN_S
    )
    live = [r for r in replicas if r.draining_since is None]
    retiring = [r for r in live if r.ends_at is not None and r.ends_at - now <= bounds.rotate_s]
    live = [r for r in live if r not in retiring]
    if len(live) < wanted:
        if load.failures >= MAX_FAILURES:
            trouble = (
                f"{load.failures} replicas failed in the last {FAILURE_WINDOW_S / 60:.0f} "
                "minutes: no more are started for now (see their jobs' logs)"
            )
            return Scaling(wanted, stop=drained, trouble=trouble)
        steady = sum(1 for r in live if not r.preemptible)
        start = tuple(steady + i >= bounds.min_replicas for i in range(wanted - len(live)))
        return Scaling(wanted, start=start, stop=drained)
    if retiring and sum(1 for r in live if r.started) >= wanted:  # its successor runs
        oldest = min(retiring, key=lambda r: (r.ends_at or 0.0, r.job_id))
        return Scaling(wanted, drain=(oldest.job_id,), stop=drained)
    if len(live) > wanted:
        victim = _victim(live)
        if not victim.started:
            return Scaling(wanted, stop=(*drained, victim.job_id))
        return Scaling(wanted, drain=(victim.job_id,), stop=drained)
    return Scaling(wanted, stop=drained)


def _victim(live: list[ReplicaNow]) -> ReplicaNow:
    """A waiting one before a started one, a preemptible before a steady one, newest first."""
    return min(live, key=lambda r: (r.started, not r.preemptible, -r.job_id))
