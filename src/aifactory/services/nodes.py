"""The cluster as everyone signed in sees it: each node, its GPUs, and the active jobs on them.

Who holds a GPU is told as far as the viewer may read that project's jobs
(`Principal.projects_for(Action.JOB_READ)`): a job of any other project keeps its GPUs but loses
its job id and its project (`JobOnNode.hidden`), so no name or id of another tenant leaves here.

Reads: the nodes, the sites' countries and the active jobs' placements — one query each; active
jobs are bounded by the GPUs (never the job history); placements are read as
`domain.placement` values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE
from aifactory.domain.permissions import Action
from aifactory.domain.placement import placement_of
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
        )
        for n in session.scalars(select(Node).order_by(Node.id))
    )
    return ClusterView(nodes, every_project=visible is None)


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
