"""Jobs: what a user asks to run, and the one legal life cycle of a job.

Invariants:
- A job's state changes only along `TRANSITIONS`; anything else is an `IllegalTransition`.
- Terminal states (`TERMINAL`) never change again.
- `PREEMPTED` is a resting point on the way back to `PENDING`, never an end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from aifactory.domain.resources import Resources


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    HELD = "HELD"
    ADMITTED = "ADMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    PREEMPTED = "PREEMPTED"


S = JobState
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.PENDING: frozenset({S.ADMITTED, S.HELD, S.CANCELLED, S.FAILED}),
    S.HELD: frozenset({S.PENDING, S.CANCELLED}),
    # ADMITTED → PENDING: the executor refused or lost the job before it ran; try again.
    S.ADMITTED: frozenset({S.RUNNING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.PREEMPTED}),
    S.PREEMPTED: frozenset({S.PENDING}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.TIMEOUT: frozenset(),
}
TERMINAL: frozenset[JobState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
ACTIVE: frozenset[JobState] = frozenset({S.ADMITTED, S.RUNNING})
WAITING: frozenset[JobState] = frozenset({S.PENDING, S.HELD})


class Network(enum.StrEnum):
    """A job's network, in its sandbox: `none` (the sovereign default: loopback only, nothing
    in or out) or `open` (the host's network; only where the facility's operator allows it)."""

    NONE = "none"
    OPEN = "open"


class IllegalTransition(ValueError):
    def __init__(self, job_id: int, current: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id}: {current} → {target} is not a legal transition")
        self.job_id = job_id
        self.current = current
        self.target = target


def check_transition(job_id: int, current: JobState, target: JobState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(job_id, current, target)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the user asked for. Resources are per node; a job spans `nodes` whole slices."""

    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    gpus_per_node: int = 0
    nodes: int = 1
    cpus_per_node: int = 1
    memory_mb_per_node: int = 1024
    gpu_model: str | None = None
    time_limit_s: int = 3600
    preemptible: bool | None = None  # None: as the project's programme says (default no)
    priority: int = 0
    datasets: tuple[str, ...] = ()  # `name` or `name@version`: resolved at submission
    network: Network = Network.NONE
    # Earlier jobs of the same project whose own directories it reads (a fine-tune, its
    # pretraining's checkpoints): mounted read-only in its sandbox.
    inputs: tuple[int, ...] = ()
    # Earlier jobs it must wait for: (after, job id) with after "ok", "any" or "not-ok"
    # (domain.dependencies).
    after: tuple[tuple[str, int], ...] = ()
    # An array (domain.arrays): one job per index, at most `array_throttle` running at once.
    array_indices: tuple[int, ...] = ()
    array_throttle: int | None = None
    # Its software besides the host's (software/): a Python environment of its project or the
    # facility's, or an imported OCI image, by name; at most one. None: the facility's Python.
    environment: str | None = None
    image: str | None = None
    # Tell its owner when it ends, whatever events their preferences name (on their channels).
    notify: bool = False
    # A gang that must run inside one network block (scheduler.topology; Slurm's --switches=1).
    one_block: bool = False

    @property
    def per_node(self) -> Resources:
        return Resources(self.gpus_per_node, self.cpus_per_node, self.memory_mb_per_node)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes
