"""The cluster page: every node and GPU, and whose job holds each, for everyone signed in.

Who holds a GPU is shown as far as the viewer may read that project's jobs
(`Principal.projects_for(Action.JOB_READ)`); anyone else's GPUs are "another project"
(web.cluster_picture decides, so its tests cover it). The picture and the table under it are
one fragment, `/nodes/picture`, that htmx fetches again every 10 seconds.

Reads: the nodes, the sites' countries and the active jobs' placements — one query each, and
active jobs are bounded by the GPUs (never the job history).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.api.deps import StateDep
from aifactory.domain.jobs import ACTIVE
from aifactory.domain.permissions import Action
from aifactory.services.principal import Principal
from aifactory.store.models import Job, Node, Project, Site
from aifactory.web import cluster_picture
from aifactory.web.cluster_picture import Holding, NodeInfo, Picture
from aifactory.web.session import Signed
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
REFRESH_S = 10


@router.get("/nodes")
def nodes_page(request: Request, signed: Signed, state: StateDep) -> Response:
    context = _context(state, signed.principal)
    return render(request, "nodes/index.html", signed, title="Cluster", **context)


@router.get("/nodes/picture")
def nodes_fragment(request: Request, signed: Signed, state: StateDep) -> Response:
    """The picture and its table alone, for htmx's refresh."""
    context = _context(state, signed.principal)
    return render(request, "nodes/picture.html", signed, **context)


def _context(state: StateDep, principal: Principal) -> dict[str, Any]:
    with state.db.read() as session:
        shown = cluster_view(session, principal)
    return {
        "picture": shown,
        "chart": cluster_picture.svg(shown, title="GPUs by node and project"),
        "all_projects": principal.projects_for(Action.JOB_READ) is None,
        "refresh_s": REFRESH_S,
        "now": state.clock(),
    }


def cluster_view(session: Session, principal: Principal) -> Picture:
    visible = principal.projects_for(Action.JOB_READ)
    return cluster_picture.picture(
        _nodes(session), _holdings(session), None if visible is None else set(visible)
    )


def _nodes(session: Session) -> list[NodeInfo]:
    countries = dict(session.execute(select(Site.name, Site.country)).all())
    return [
        NodeInfo(
            id=n.id,
            site=n.site,
            country=countries.get(n.site),
            gpu_model=n.gpu_model,
            gpu_ids=tuple(str(g) for g in n.gpu_ids),
            cpus=n.cpus,
            memory_mb=n.memory_mb,
            schedulable=n.schedulable,
        )
        for n in session.scalars(select(Node).order_by(Node.id))
    ]


def _holdings(session: Session) -> list[Holding]:
    rows = session.execute(
        select(Job.id, Job.project_id, Project.name, Job.placement)
        .join(Project, Project.id == Job.project_id)
        .where(Job.state.in_([s.value for s in ACTIVE]))
        .order_by(Job.id)
    )
    return [
        Holding(job, project_id, name, _gpu_ids(placement))
        for job, project_id, name, placement in rows
    ]


def _gpu_ids(placement: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """{node: [GPU id, …]} from the stored placement ({node: {gpu_ids, cpu_ids, …}})."""
    return {
        node: [str(g) for g in part.get("gpu_ids", [])]
        for node, part in (placement or {}).items()
        if isinstance(part, Mapping)
    }
