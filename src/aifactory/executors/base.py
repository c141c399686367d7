"""The executor interface: a few idempotent verbs, keyed by the attempt (job id, attempt number).

Vocabulary: an *attempt* is one try at running a job. A job runs again, as a new attempt (its
`attempts` count), only after it was preempted and requeued.

Invariants every executor keeps (DESIGN.md §7):
- `start` is idempotent: asking twice for one attempt never runs it twice.
- `poll` only observes; it never changes a job.
- An attempt's observation moves forward only: NOT_STARTED → STARTING → RUNNING → EXITED, or
  LOST.
- `cancel` and `preempt` both stop an attempt (SIGTERM, a grace period, SIGKILL); they differ
  only in the outcome recorded. Asked before the attempt started, it never runs at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources


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


@dataclass(frozen=True, slots=True, order=True)
class Attempt:
    """One try at running a job: its id and the attempt number (1, then 2… after each requeue)."""

    job_id: int
    number: int


@dataclass(frozen=True, slots=True)
class Launch:
    attempt: Attempt
    command: Sequence[str]
    env: Mapping[str, str]
    working_dir: str | None
    time_limit_s: int
    placement: Mapping[str, NodeSlice]
    project: str | None = None  # whose work it is (the Slurm executor's account)
    project_id: int | None = None  # …and whose identity it runs under (executors.sandbox)
    datasets: tuple[str, ...] = ()  # the granted versions' paths, mounted read-only
    network: str = "none"  # the job's network policy: none or open (executors.sandbox.spec)
    inputs: tuple[int, ...] = ()  # its project's jobs whose own directories it reads
    # Its software (software/): a ready Python environment's directory on the host, mounted
    # read-only at the same path with its bin/ first on PATH; or an imported image's directory
    # (its rootfs/ and image.json), run by the OCI runtime instead of bubblewrap. At most one.
    environment: str | None = None
    image: str | None = None
    # A Unix socket in its own directory that the facility connects to (a session's notebook
    # server): on Slurm, relayed to a port of its node (executors.slurm.relay).
    serves: str | None = None

    @property
    def job_id(self) -> int:
        return self.attempt.job_id


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"  # stopped at the scheduler's request: the job is to run again


class Phase(enum.StrEnum):
    NOT_STARTED = "not_started"  # the executor never saw this attempt: safe to start it
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

    def poll(self, attempts: Iterable[Attempt]) -> dict[Attempt, Observation]: ...

    def cancel(self, attempt: Attempt) -> None: ...

    def preempt(self, attempt: Attempt) -> None: ...

    def log_path(self, job_id: int) -> Path:
        """The log of the job's latest attempt."""
        ...

    def foreign_load(self) -> Mapping[str, Resources]:
        """What work this facility did not start holds on each node now (e.g. jobs submitted
        to Slurm directly), as of the latest poll: the scheduler must not hand it out."""
        ...
