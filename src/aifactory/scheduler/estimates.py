"""Runtime estimates learned from history, never from the job's true runtime.

Users ask for round, generous time limits (most jobs use a small fraction of them), so a limit
alone says little about when a job will end. `RuntimeHistory` learns, from the jobs each user
and project finished, what fraction of its limit a job really uses, and predicts the next one
from the average of the last few (Tsafrir, Etsion & Feitelson, "Backfilling using
system-generated predictions rather than user runtime estimates", IEEE TPDS 2007: the mean of
a user's last two jobs beats the user's own estimate). It looks for the most specific history
first — same user, project and limit; same user and project; same project; the whole facility —
and without any history it trusts the limit. An estimate never exceeds the limit: the executor
kills a job there.

A running job that has outlived its estimate is expected to run as long again as it already
has (heavy-tailed runtimes: the longer a job has run, the longer it is likely to go on), never
past its limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aifactory.scheduler.snapshot import PendingJob, RunningJob

KEEP = 2  # jobs remembered per history; Tsafrir et al. found two to work best
MIN_RUNTIME_S = 1.0


class RuntimeEstimates(Protocol):
    def runtime(self, job: PendingJob | RunningJob) -> float:
        """Expected runtime in seconds, at most the job's time limit."""
        ...


@dataclass
class _Recent:
    """The last few ratios (runtime ÷ limit) or runtimes, with their mean kept current."""

    keep: int = KEEP
    values: deque[float] = field(init=False)
    mean: float = 0.0

    def __post_init__(self) -> None:
        self.values = deque(maxlen=self.keep)

    def add(self, value: float) -> None:
        self.values.append(value)
        self.mean = sum(self.values) / len(self.values)


@dataclass
class RuntimeHistory:
    """What finished jobs taught; fed by the caller (control loop or simulator) as jobs end."""

    _ratios: dict[tuple[str, ...], _Recent] = field(default_factory=dict)
    _runtimes: dict[tuple[str, ...], _Recent] = field(default_factory=dict)
    # Answers since the last record, by (user, project, limit): schedulers ask every round.
    _answers: dict[tuple[str, str, float], float] = field(default_factory=dict)
    finished: int = 0
    keep: int = KEEP  # how many recent jobs each estimate averages

    def record(self, user: str, project: str, time_limit_s: float, runtime_s: float) -> None:
        runtime = max(MIN_RUNTIME_S, runtime_s)
        self.finished += 1
        self._answers.clear()
        for key in _keys(user, project):
            self._remember(self._runtimes, key, runtime)
        if math.isfinite(time_limit_s) and time_limit_s > 0:
            ratio = min(1.0, runtime / time_limit_s)
            for key in _ratio_keys(user, project, time_limit_s):
                self._remember(self._ratios, key, ratio)

    def _remember(
        self, into: dict[tuple[str, ...], _Recent], key: tuple[str, ...], value: float
    ) -> None:
        recent = into.get(key)
        if recent is None:
            recent = into[key] = _Recent(self.keep)
        recent.add(value)

    def runtime(self, job: PendingJob | RunningJob) -> float:
        key = (job.user, job.project, job.time_limit_s)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = self._learned(job)
        return found

    def _learned(self, job: PendingJob | RunningJob) -> float:
        limit = job.time_limit_s
        if math.isfinite(limit):
            for key in _ratio_keys(job.user, job.project, limit):
                found = self._ratios.get(key)
                if found is not None:
                    return max(MIN_RUNTIME_S, min(limit, limit * found.mean))
            return limit
        for key in _keys(job.user, job.project):
            seen = self._runtimes.get(key)
            if seen is not None:
                return seen.mean
        return math.inf


def _keys(user: str, project: str) -> tuple[tuple[str, ...], ...]:
    return (("user", user, project), ("project", project), ("facility",))


def _ratio_keys(user: str, project: str, time_limit_s: float) -> tuple[tuple[str, ...], ...]:
    return (("limit", user, project, str(time_limit_s)), *_keys(user, project))


def from_latest(
    finished: Iterable[tuple[str, str, float, float]], keep: int = KEEP
) -> RuntimeHistory:
    """The history that finished jobs teach, given newest first as (user, project, limit,
    runtime). Only the last `keep` jobs of each history count, so a job that is not among them
    for any of its histories is skipped: the same history as recording them all, oldest first,
    for the cost of a few per user instead of thousands."""
    seen: dict[tuple[str, ...], int] = {}
    needed = []
    total = 0
    for row in finished:
        total += 1
        user, project, limit, _ = row
        wanted = False
        for key in _ratio_keys(user, project, limit):
            count = seen.get(key, 0)
            wanted = wanted or count < keep
            seen[key] = count + 1
        if wanted:
            needed.append(row)
    history = RuntimeHistory(keep=keep)
    for user, project, limit, runtime in reversed(needed):
        history.record(user, project, limit, runtime)
    history.finished = total
    return history


def expected_end(job: RunningJob, now: float, runtimes: RuntimeEstimates | None) -> float:
    """When `job` will probably end: by its estimate, or by its limit without estimates."""
    limit_end = job.started_at + job.time_limit_s
    if runtimes is None:
        return limit_end
    guess = job.started_at + runtimes.runtime(job)
    if guess > now:
        return min(guess, limit_end)
    return min(limit_end, now + max(MIN_RUNTIME_S, now - job.started_at))
