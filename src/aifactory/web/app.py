"""`install`: the portal's pages and assets on the facility's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from aifactory.web.pages import dashboard, login

STATIC_DIR = Path(__file__).parent / "static"
PAGES = (login.router, dashboard.router)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router in PAGES:
        app.include_router(router)
