"""The cluster as everyone signed in sees it: each node, its GPUs, its drain and health, and the
active jobs on them; and operators' drain and resume.

Who holds a GPU is told as far as the viewer may read that project's jobs
(`Principal.projects_for(Action.JOB_READ)`): a job of any other project keeps its GPUs but loses
its job id and its project (`JobOnNode.hidden`), so no name or id of another tenant leaves here.

Reads: the nodes, the sites' countries and the active jobs' placements — one query each; active
jobs are bounded by the GPUs (never the job history); placements are read as
`domain.placement` values.

Drain and resume (Action.NODE_DRAIN): the drain is written and audited (control.drains), then
passed to the executor (`NodeControl`: `scontrol update` on Slurm) before the request's
transaction commits, so a drain Slurm refused is no drain here either and the operator is told.
Why a node is drained, by whom and since when, and what its latest health check found, are
shown with it everywhere (domain.node_health).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.control import drains
from aifactory.domain.jobs import ACTIVE
from aifactory.domain.node_health import Drain, reason_problem
from aifactory.domain.permissions import Action
from aifactory.domain.placement import placement_of
from aifactory.errors import InvalidInput, NotFound, NotReady
from aifactory.executors.health import FacilityOnly, NodeControl
from aifactory.services import sites
from aifactory.services.principal import Principal
from aifactory.store.models import Job, Node, Project


@dataclass(frozen=True, slots=True)
class JobOnNode:
    """An active job's GPUs on one node. `job_id`, `project_id` and `project` are None when
    the viewer may not read the jobs of its project ("another project")."""

    job_id: int | None
    project_id: int | None
    project: str | None
    gpu_ids: tuple[str, ...]

    @property
    def hidden(self) -> bool:
        return self.project_id is None


@dataclass(frozen=True, slots=True)
class NodeView:
    id: str
    site: str
    country: str | None  # None: a site with no country recorded
    gpu_model: str | None
    gpu_ids: tuple[str, ...]  # the device ids the executor gave, in the node's order
    cpus: int
    memory_mb: int
    schedulable: bool
    jobs: tuple[JobOnNode, ...]  # by job id
    drain: Drain | None = None  # None: not drained
    health_problem: str | None = None  # what its latest health check found; None: passed
    health_checked_at: float | None = None  # None: never checked
    block: str | None = None  # its network block; None: no topology declared


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node as operators and the API list it: its size, whether it takes work, and why not."""

    id: str
    site: str
    pool: str
    executor: str
    gpus: int
    gpu_model: str | None
    cpus: int
    memory_mb: int
    schedulable: bool
    drain_reason: str | None
    drained_by: str | None  # an operator's name, or "health"
    drained_at: float | None
    health_problem: str | None
    health_checked_at: float | None
    block: str | None  # its network block; None: no topology declared

    @classmethod
    def of(cls, n: Node) -> NodeStatus:
        return cls(
            n.id,
            n.site,
            n.pool,
            n.executor,
            n.gpus,
            n.gpu_model,
            n.cpus,
            n.memory_mb,
            n.schedulable,
            n.drain_reason,
            n.drained_by,
            n.drained_at,
            n.health_problem,
            n.health_checked_at,
            n.block,
        )


@dataclass(frozen=True, slots=True)
class ClusterView:
    nodes: tuple[NodeView, ...]  # by node id
    every_project: bool  # the viewer may read every project's jobs: nothing is hidden


def cluster(session: Session, principal: Principal) -> ClusterView:
    """Every node with the active jobs on its GPUs, as far as the principal may see them."""
    visible = principal.projects_for(Action.JOB_READ)
    on_node = _jobs_by_node(session, None if visible is None else set(visible))
    countries = {site.name: site.country for site, _ in sites.list_sites(session)}
    nodes = tuple(
        NodeView(
            id=n.id,
            site=n.site,
            country=countries.get(n.site),
            gpu_model=n.gpu_model,
            gpu_ids=tuple(str(g) for g in n.gpu_ids),
            cpus=n.cpus,
            memory_mb=n.memory_mb,
            schedulable=n.schedulable,
            jobs=tuple(on_node.get(n.id, ())),
            drain=drains.drain_of(n),
            health_problem=n.health_problem,
            health_checked_at=n.health_checked_at,
            block=n.block,
        )
        for n in session.scalars(select(Node).order_by(Node.id))
    )
    return ClusterView(nodes, every_project=visible is None)


def list_nodes(session: Session, principal: Principal) -> list[NodeStatus]:
    """Every node by id; anyone signed in may see the facility's nodes (as `cluster`)."""
    del principal
    return [NodeStatus.of(n) for n in session.scalars(select(Node).order_by(Node.id))]


def drain(
    session: Session,
    principal: Principal,
    node_id: str,
    *,
    reason: str,
    now: float,
    control: NodeControl | None = None,
) -> NodeStatus:
    """Take the node out of service: what runs on it finishes, nothing new is placed there.
    Draining a drained node again gives it the new reason and makes it this operator's."""
    principal.authorize(Action.NODE_DRAIN)
    problem = reason_problem(reason)
    if problem is not None:
        raise InvalidInput(problem, field="reason")
    row = _node(session, node_id)
    reason = reason.strip()
    drains.drain(session, row, reason=reason, by=principal.name, now=now, source=principal.source)
    session.flush()
    _tell((control or FacilityOnly()).drain, row.id, f"{reason} [{principal.name}]")
    return NodeStatus.of(row)


def resume(
    session: Session,
    principal: Principal,
    node_id: str,
    *,
    now: float,
    control: NodeControl | None = None,
) -> NodeStatus:
    """Put the node back in service, whoever drained it (a health check that still fails
    drains it again). A node that is not drained is left as it is."""
    principal.authorize(Action.NODE_DRAIN)
    row = _node(session, node_id)
    if row.drained_at is None:
        return NodeStatus.of(row)
    drains.resume(session, row, by=principal.name, now=now, source=principal.source)
    session.flush()
    _tell((control or FacilityOnly()).resume, row.id)
    return NodeStatus.of(row)


def _tell(step: Callable[..., None], *args: str) -> None:
    """Pass the change to the executor; if it refuses, the transaction rolls back."""
    try:
        step(*args)
    except Exception as exc:
        raise NotReady(f"the executor did not take the change: {exc}", field="node") from exc


def _node(session: Session, node_id: str) -> Node:
    row = session.get(Node, node_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no node {node_id!r}", field="node")
    return row


def _jobs_by_node(session: Session, visible: set[int] | None) -> dict[str, list[JobOnNode]]:
    rows = session.execute(
        select(Job.id, Job.project_id, Project.name, Job.placement)
        .join(Project, Project.id == Job.project_id)
        .where(Job.state.in_([s.value for s in ACTIVE]))
        .order_by(Job.id)
    )
    found: dict[str, list[JobOnNode]] = {}
    for job_id, project_id, project, placement in rows:
        shown = visible is None or project_id in visible
        for node_id, share in placement_of(placement).items():
            found.setdefault(node_id, []).append(
                JobOnNode(job_id, project_id, project, share.gpu_ids)
                if shown
                else JobOnNode(None, None, None, share.gpu_ids)
            )
    return found
