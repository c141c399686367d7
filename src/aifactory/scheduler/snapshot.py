"""The facility as the scheduler sees it at one instant: nodes, what runs, what waits.

Keeps what waits (`pending`) apart from what is used (`running`); `free_by_node()` derives the
free capacity from the two, so a snapshot can never disagree with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from aifactory.domain.datasets import DatasetRead
from aifactory.domain.dependencies import Dependency
from aifactory.domain.jobs import JobState
from aifactory.domain.money import ms_of_seconds
from aifactory.domain.programmes import Funds
from aifactory.domain.resources import Resources
from aifactory.scheduler.maintenance import Window

if TYPE_CHECKING:
    from aifactory.scheduler.estimates import RuntimeEstimates


@dataclass(frozen=True, slots=True)
class NodeView:
    id: str
    capacity: Resources
    gpu_model: str | None = None
    schedulable: bool = True
    country: str | None = None  # of the node's site (ISO alpha-2), for data residency
    # Why an unschedulable node takes no work, for people ("drained: PSU swap"); None: not said.
    out_of_service: str | None = None
    # The network block the node sits in (a leaf switch or NVLink domain: nodes in one block
    # talk at full bandwidth); None: the facility declares no topology (scheduler.topology).
    block: str | None = None

    @property
    def kind(self) -> NodeKind:
        return NodeKind(self.gpu_model, self.country, self.block)


@dataclass(frozen=True, slots=True)
class NodeKind:
    """What, besides free room, decides whether a node may take a job (its GPU model, its
    country), and where a gang's nodes had best be (its block)."""

    gpu_model: str | None = None
    country: str | None = None
    block: str | None = None


@dataclass(frozen=True, slots=True)
class RunningJob:
    job_id: int
    project: str
    placement: Mapping[str, Resources]
    started_at: float
    time_limit_s: float
    user: str = ""
    preemptible: bool = False
    stopping: bool = False  # asked to stop (preempted or cancelled): its GPUs free up soon
    array_id: int | None = None  # a task of this array (domain.arrays)

    @property
    def gpus(self) -> int:
        return sum(part.gpus for part in self.placement.values())

    @property
    def expected_end(self) -> float:
        """The latest the job can end: a real scheduler knows only the user's time limit."""
        return self.started_at + self.time_limit_s


@dataclass(frozen=True, slots=True)
class PendingJob:
    job_id: int
    project: str
    submitted_at: float
    per_node: Resources
    nodes: int = 1
    gpu_model: str | None = None
    time_limit_s: float = 3600.0
    priority: int = 0
    preemptible: bool = False
    user: str = ""
    # Where its datasets may be processed (data residency); None: anywhere.
    countries: frozenset[str] | None = None
    held: str | None = None  # HELD now, for this reason; None: waiting in line
    uses_datasets: bool = False  # declared datasets: its project's right to read them decides
    after: tuple[Dependency, ...] = ()  # earlier jobs it waits for (domain.dependencies)
    array_id: int | None = None  # a task of this array (domain.arrays) …
    array_throttle: int | None = None  # … of which at most this many may run at once
    # A gang that must run inside one network block (asked by its user); without it a gang
    # still prefers one block, but takes several rather than wait (scheduler.topology).
    one_block: bool = False

    @property
    def gpu_ms(self) -> int:
        """The most GPU-milliseconds it may use: what a budget must cover to admit it."""
        return self.gpus * ms_of_seconds(self.time_limit_s)

    @property
    def gpus(self) -> int:
        return self.per_node.gpus * self.nodes


@dataclass(frozen=True, slots=True)
class ProjectView:
    """What the scheduler knows of a tenant beyond its jobs.

    `shares`: its relative entitlement (allocation weight); `quota_gpus`: GPUs it is guaranteed
    and may take back from borrowers; `usage`: its GPU-seconds of use, decayed to `now` (see
    `scheduler.usage`). A project missing from the snapshot has one share, no quota, no usage.
    """

    name: str
    shares: float = 1.0
    quota_gpus: int = 0
    usage: float = 0.0


@dataclass(frozen=True, slots=True)
class Admission:
    """What decides whether a waiting job may start at all (scheduler.admission), read with the
    snapshot: each project's allocations with what is left of them, each job's declared
    datasets with the project's right to read them now, and where the jobs waiting jobs depend
    on stand. Empty: nothing is held (simulator)."""

    budgets_enforced: bool = False
    funds: Mapping[str, tuple[Funds, ...]] = field(default_factory=lambda: MappingProxyType({}))
    data: Mapping[int, tuple[DatasetRead, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Where each job a waiting job depends on stands now, by its id.
    states: Mapping[int, JobState] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Snapshot:
    nodes: tuple[NodeView, ...]
    running: tuple[RunningJob, ...] = ()
    pending: tuple[PendingJob, ...] = ()
    # Optional: free capacity of each schedulable node, for callers that keep it up to date as
    # jobs start and end (the simulator). It must equal what `free_by_node` would count.
    free: Mapping[str, Resources] | None = None
    projects: Mapping[str, ProjectView] = field(default_factory=lambda: MappingProxyType({}))
    # What history teaches about runtimes (None: trust the user time limits alone).
    runtimes: RuntimeEstimates | None = None
    # HELD jobs (`held` says why) and the facts that decide holds: a round may hold a waiting
    # job or release a held one (scheduler.verdict).
    held: tuple[PendingJob, ...] = ()
    admission: Admission = field(default_factory=Admission)
    # Maintenance windows not yet over: no job starts on their nodes that would run into one.
    maintenance: tuple[Window, ...] = ()

    def project(self, name: str) -> ProjectView:
        found = self.projects.get(name)
        return found if found is not None else ProjectView(name)

    def free_by_node(self) -> dict[str, Resources]:
        """A fresh (mutable) map of free capacity per schedulable node."""
        if self.free is not None:
            return dict(self.free)
        return self.count_free()

    def count_free(self) -> dict[str, Resources]:
        used: dict[str, list[int]] = {n.id: [0, 0, 0] for n in self.nodes if n.schedulable}
        for job in self.running:
            for node_id, part in job.placement.items():
                total = used.get(node_id)
                if total is not None:
                    total[0] += part.gpus
                    total[1] += part.cpus
                    total[2] += part.memory_mb
        return {
            n.id: Resources(
                n.capacity.gpus - u[0], n.capacity.cpus - u[1], n.capacity.memory_mb - u[2]
            )
            for n in self.nodes
            if (u := used.get(n.id)) is not None
        }

    def kinds(self) -> dict[str, NodeKind]:
        return {n.id: n.kind for n in self.nodes}
