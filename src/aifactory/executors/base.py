"""The executor interface: a few idempotent verbs, keyed by the aifactory job id.

Invariants every executor keeps (DESIGN.md §7):
- `start` is idempotent: asking twice for one job never runs it twice.
- `poll` only observes; it never changes a job.
- A job's observation moves forward only: NOT_STARTED → STARTING → RUNNING → EXITED, or LOST.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aifactory.domain.nodes import Node


@dataclass(frozen=True, slots=True)
class NodeOffer:
    """A node as its executor found it, with the device ids behind its GPU count."""

    node: Node
    gpu_ids: list[str]


@dataclass(frozen=True, slots=True)
class NodeSlice:
    """What one job gets on one node: named GPUs and CPU slots, and a memory cap."""

    gpu_ids: list[str]
    cpu_ids: list[int]
    memory_mb: int


@dataclass(frozen=True, slots=True)
class Launch:
    job_id: int
    command: Sequence[str]
    env: Mapping[str, str]
    working_dir: str | None
    time_limit_s: int
    placement: Mapping[str, NodeSlice]


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class Phase(enum.StrEnum):
    NOT_STARTED = "not_started"  # the executor never saw this job: safe to start it
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    LOST = "lost"  # it was started but its outcome can never be known


@dataclass(frozen=True, slots=True)
class Observation:
    phase: Phase
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    outcome: Outcome | None = None
    reason: str | None = None
    usage: Mapping[str, float] = field(default_factory=dict)


class Executor(Protocol):
    name: str
    capabilities: frozenset[str]

    def inventory(self) -> list[NodeOffer]: ...

    def start(self, launch: Launch) -> None: ...

    def poll(self, job_ids: Iterable[int]) -> dict[int, Observation]: ...

    def cancel(self, job_id: int) -> None: ...

    def log_path(self, job_id: int) -> Path: ...
