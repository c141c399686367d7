"""`create_app`: the FastAPI application, with its services wired in and one error map. The
portal is not the API's to mount: the composition root adds it (`server.facility_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    nullcontext,
)

from fastapi import APIRouter, Depends, FastAPI
from fastapi.telemetry import TelemetryConfig

from aifactory import __version__
from aifactory.api import docs, errors
from aifactory.api.deps import one_value_each
from aifactory.api.limits import BodySizeLimit
from aifactory.api.routers import (
    allocations,
    audit,
    datasets,
    efficiency,
    facility,
    federation,
    gdpr,
    inference,
    job_shell,
    jobs,
    maintenance,
    me,
    metrics,
    money,
    nodes,
    notifications,
    programmes,
    proposals,
    sessions,
    sign_in,
    software,
    tenancy,
    whatif,
)
from aifactory.api.schemas import ErrorOut
from aifactory.faces.state import AppState

API_PREFIX = "/api/v1"
DEFAULT_MAX_BODY = 1024 * 1024
MAX_IMAGE_BYTES = 256 * 1024**3  # an image file (`aifactory images import`)

# Sovereign by default: FastAPI's built-in OpenTelemetry (spans, metrics, logs, and OTLP
# exporters when FASTAPI_OTEL_AUTO_CONFIGURE is set) stays off, whatever the environment says.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}

_ERRORS = {code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422)}


Background = Callable[[], AbstractContextManager[None]]


def _lifespan(
    state: AppState, background: Background | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with background() if background else nullcontext():
            state.committer.start()
            try:
                yield
            finally:
                state.committer.stop()

    return lifespan


def create_app(
    state: AppState,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    background: Background | None = None,
    pages: errors.PageErrors | None = None,
) -> FastAPI:
    """`background`: work that runs for the app's lifetime (the control loop). `pages`: how an
    error on a path outside /api/ is answered (the portal's pages, which the composition root
    installs on this app); none: as JSON, like any other."""
    app = FastAPI(
        title="aifactory",
        version=__version__,
        summary="Control plane of a sovereign, shared GPU facility",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
        responses=_ERRORS,  # type: ignore[arg-type]
        telemetry=NO_TELEMETRY,
        lifespan=_lifespan(state, background),
    )
    app.state.aifactory = state
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(one_value_each)])
    routers = (
        facility.router,
        nodes.router,
        maintenance.router,
        jobs.router,
        jobs.queue_router,
        efficiency.router,
        tenancy.router,
        me.router,
        notifications.router,
        programmes.router,
        proposals.router,
        allocations.router,
        money.router,
        federation.router,
        audit.router,
        datasets.router,
        gdpr.router,
        whatif.router,
        software.router,
        inference.router,
        sessions.router,
        sign_in.router,
    )
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    errors.install(app, pages=pages)
    docs.install(app, prefix=API_PREFIX)
    job_shell.install(app, API_PREFIX)  # a WebSocket: outside the router's HTTP dependencies
    app.add_middleware(
        BodySizeLimit,
        max_bytes=max_body_bytes,
        uploads={f"{API_PREFIX}{software.IMAGE_UPLOAD_PATH}": MAX_IMAGE_BYTES},
    )
    metrics.install(app)  # /metrics, and every request timed by its route (outermost)
    return app
