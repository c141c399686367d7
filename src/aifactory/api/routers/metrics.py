"""`/metrics` for Prometheus (at the root, out of the OpenAPI schema), and the timing of every
request by its route template (docs/metrics.md).

The route label is the template that matched (`/api/v1/jobs/{job_id}`), never the raw path, and
methods outside the usual few count as "other": no client can mint label values.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aifactory.api.deps import StateDep
from aifactory.api.errors import STATUS, error_response
from aifactory.errors import PermissionDenied, Unauthenticated
from aifactory.services.metrics_exposition import CONTENT_TYPE, scrape

PATH = "/metrics"
UNMATCHED = "unmatched"  # a request no route took (a 404): one label for all of them
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="the metrics token: 'Bearer …'")
router = APIRouter()


@router.get(PATH, include_in_schema=False)
async def metrics(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Refusals answer JSON here, not the portal's page: the caller is a scraper."""
    try:
        body = await run_in_threadpool(
            scrape,
            state.db,
            state.clock(),
            state.process_metrics,
            state.metrics_access,
            client=request.client.host if request.client else None,
            bearer=credentials.credentials if credentials else None,
        )
    except (Unauthenticated, PermissionDenied) as exc:
        status = STATUS[type(exc)]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, exc.code, exc.message, [(None, exc.message)], headers)
    return Response(body, media_type=CONTENT_TYPE)


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request under its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]  # an exception that escapes is answered 500 further out

        async def sent(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope)
            scope["app"].state.aifactory.process_metrics.request(
                method, route, status[0], time.perf_counter() - began
            )


def route_template(scope: Scope) -> str:
    """The whole template of the route that took the request. FastAPI keeps an included
    router's routes under it, each with its path inside that router (`/jobs/{job_id}`), and
    leaves the whole one in its effective route context; where there is none (a route of the
    app itself, a mount, an older FastAPI that copied routes up) the route's own path is whole."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    found = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return str(found) if found else UNMATCHED


def install(app: FastAPI) -> None:
    """The route, and the timing around everything `create_app` put on the app so far."""
    app.include_router(router)
    app.add_middleware(RequestMetrics)
