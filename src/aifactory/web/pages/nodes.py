"""The cluster page: every node and GPU, and whose job holds each, for everyone signed in.

Who holds a GPU is shown as far as the viewer may read that project's jobs: services.nodes
decides and hides the rest, web.cluster_picture draws anyone else's GPUs as "another project".
The picture and the table under it are one fragment, `/nodes/picture`, that htmx fetches again
every 10 seconds. Under it, the maintenance windows not over yet (services.maintenance).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from aifactory.faces.state import StateDep
from aifactory.services import maintenance, nodes
from aifactory.services.principal import Principal
from aifactory.web import cluster_picture
from aifactory.web.session import Signed
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
REFRESH_S = 10


@router.get("/nodes")
def nodes_page(request: Request, signed: Signed, state: StateDep) -> Response:
    context = _context(state, signed.principal)
    with state.db.read() as session:
        windows = maintenance.listed(session, signed.principal, now=state.clock())
    return render(request, "nodes/index.html", signed, title="Cluster", windows=windows, **context)


@router.get("/nodes/picture")
def nodes_fragment(request: Request, signed: Signed, state: StateDep) -> Response:
    """The picture and its table alone, for htmx's refresh."""
    context = _context(state, signed.principal)
    return render(request, "nodes/picture.html", signed, **context)


def _context(state: StateDep, principal: Principal) -> dict[str, Any]:
    with state.db.read() as session:
        cluster = nodes.cluster(session, principal)
    shown = cluster_picture.of_cluster(cluster)
    return {
        "picture": shown,
        "chart": cluster_picture.svg(shown, title="GPUs by node and project"),
        "all_projects": cluster.every_project,
        "refresh_s": REFRESH_S,
        "now": state.clock(),
    }
