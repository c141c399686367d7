"""Job arrays, as Slurm's `--array` has them: one submission, many tasks that differ only by
their index (`AIFACTORY_ARRAY_INDEX`), with an optional limit on how many run at once. Pure.

`0-99` (a range), `0-99:10` (every tenth), `1,3,8-10` (a list), each optionally `%8` (at most
eight tasks running at once). Every task is a job of its own — queued, held, cancelled, metered
as one — and carries its array's id (the first task's job id), its index and the limit.
A job that depends on an array's id waits for the whole array (`array_state`), as in Slurm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from aifactory.domain.jobs import TERMINAL, JobState

MAX_TASKS = 1000  # per submission: a bigger sweep is several arrays
INDEX_ENV = "AIFACTORY_ARRAY_INDEX"
ID_ENV = "AIFACTORY_ARRAY_ID"
_PART = re.compile(r"^(\d{1,7})(?:-(\d{1,7})(?::(\d{1,7}))?)?$")


@dataclass(frozen=True, slots=True)
class ArraySpec:
    indices: tuple[int, ...]
    throttle: int | None = None  # at most this many tasks running at once; None: no limit


def parse_array(text: str) -> ArraySpec:
    """`0-99%8` and the like; ValueError saying what is wrong."""
    body, _, limit = text.strip().partition("%")
    indices: list[int] = []
    for part in body.split(","):
        indices += _indices(part.strip())
    if not indices:
        raise ValueError("an array needs at least one index")
    if len(indices) > MAX_TASKS:
        raise ValueError(f"at most {MAX_TASKS} tasks in one array ({len(indices)} asked)")
    if len(set(indices)) != len(indices):
        raise ValueError("an index is given twice")
    return ArraySpec(tuple(indices), _throttle(limit) if limit else None)


def _indices(part: str) -> list[int]:
    found = _PART.match(part)
    if found is None:
        raise ValueError(f"{part!r}: expected N, A-B or A-B:STEP")
    first, last, step = found.groups()
    if last is None:
        return [int(first)]
    if int(last) < int(first):
        raise ValueError(f"{part!r}: the range runs backwards")
    stride = int(step or 1)
    if stride < 1:
        raise ValueError(f"{part!r}: the step must be at least 1")
    if (int(last) - int(first)) // stride + 1 > MAX_TASKS:
        raise ValueError(f"at most {MAX_TASKS} tasks in one array")
    return list(range(int(first), int(last) + 1, stride))


def _throttle(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"%{text}: the limit must be a whole number of at least 1")
    return int(text)


def array_state(states: Iterable[JobState]) -> JobState:
    """An array as one dependency: RUNNING until every task has ended; then SUCCEEDED if every
    task succeeded, else its worst ending (FAILED, then TIMEOUT, then CANCELLED)."""
    found = set(states)
    if not found <= TERMINAL:
        return JobState.RUNNING
    for worst in (JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED):
        if worst in found:
            return worst
    return JobState.SUCCEEDED
