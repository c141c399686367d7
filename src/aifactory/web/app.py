"""`install`: the portal's pages and assets on the facility's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from aifactory.web.pages import (
    allocations,
    audit,
    dashboard,
    datasets,
    inference,
    jobs,
    login,
    nodes,
    notifications,
    projects,
    proposals,
    sessions,
    software,
    usage,
    whatif,
)

STATIC_DIR = Path(__file__).parent / "static"
PAGES = (
    login.router,
    notifications.router,
    dashboard.router,
    jobs.router,
    nodes.router,
    projects.router,
    allocations.router,
    proposals.router,
    usage.router,
    datasets.router,
    software.router,
    inference.router,
    sessions.router,
    audit.router,
    whatif.router,
)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router in PAGES:
        app.include_router(router)
