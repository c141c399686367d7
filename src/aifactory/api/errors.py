"""The one map from errors to HTTP responses. Every error body has the same shape:

    {"error": "<code>", "message": "<one line>", "errors": [{"field": ..., "reason": ...}]}

No traceback ever leaves the server; an unexpected error is logged and answered with a 500
that says only that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from aifactory import errors
from aifactory.domain.jobs import IllegalTransition
from aifactory.faces.wording import reason_of as reason_of

log = logging.getLogger("aifactory.api")

STATUS: dict[type[errors.AifactoryError], int] = {
    errors.InvalidInput: 422,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotReady: 503,
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[tuple[str | None, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": code,
        "message": message,
        "errors": [{"field": f, "reason": r} for f, r in details],
    }
    return JSONResponse(body, status_code=status, headers=headers)


# The portal's: an error on a page (any path outside /api/) answered as a page.
PageErrors = Callable[[Request, int, str, Exception], Response]


def install(app: FastAPI, pages: PageErrors | None = None) -> None:
    app.state.page_errors = pages
    app.add_exception_handler(errors.AifactoryError, _on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(IllegalTransition, _on_illegal)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


def _page(request: Request) -> PageErrors | None:
    pages: PageErrors | None = getattr(request.app.state, "page_errors", None)
    return pages if pages is not None and not request.url.path.startswith("/api/") else None


async def _on_domain_error(request: Request, exc: errors.AifactoryError) -> Response:
    # Work the error answer waits for (e.g. auditing a refused token), left by a dependency:
    # it runs here, after every session the request opened has ended.
    on_error = getattr(request.state, "on_error", None)
    if on_error is not None:
        try:
            await run_in_threadpool(on_error)
        except Exception:  # the client still gets its answer; the operator sees why in the log
            log.exception("work before an error response failed")
    status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
    if pages := _page(request):
        return pages(request, status, exc.message, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, [(exc.field, exc.message)], headers)


async def _on_illegal(request: Request, exc: IllegalTransition) -> Response:
    if pages := _page(request):
        return pages(request, 409, str(exc), exc)
    return error_response(409, "conflict", str(exc), [("state", str(exc))])


async def _on_validation(request: Request, exc: RequestValidationError) -> Response:
    details = [(_field_of(e["loc"], e.get("type")), reason_of(e)) for e in exc.errors()]
    message = "; ".join(f"{f}: {r}" for f, r in details) or "invalid request"
    if pages := _page(request):
        return pages(request, 422, message, exc)
    return error_response(422, "invalid_input", message, details)


async def _on_http(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers["Allow"] = allowed
    if pages := _page(request):
        page = pages(request, exc.status_code, str(exc.detail), exc)
        page.headers.update(headers)
        return page
    if unreadable := _unreadable_body(exc):
        return error_response(422, "invalid_input", f"body: {unreadable}", [("body", unreadable)])
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    return error_response(
        exc.status_code, code, str(exc.detail), [(None, str(exc.detail))], headers or None
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes. Starlette's 405 names only the methods of the
    first route that matched the path, while each method of a path is a route of its own: ask
    every route (mounted files aside, which take any method here) about each method."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return ", ".join(m for m in _METHODS if _taken(routes, request.scope, m))


def _taken(routes: list[BaseRoute], scope: Scope, method: str) -> bool:
    probe = {**_bare(scope), "method": method}
    return any(route.matches(probe)[0] == Match.FULL for route in routes)


def _bare(scope: Scope) -> Scope:
    """The request as routing first saw it, before a route left its marks in the scope."""
    keys = ("type", "http_version", "scheme", "server", "path", "raw_path", "root_path")
    return {"headers": [], "query_string": b"", **{k: scope[k] for k in keys if k in scope}}


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """Why a JSON body could not be read, where FastAPI answers only 400 "There was an error
    parsing the body" (its own error is the cause: nested too deeply, or not UTF-8)."""
    if exc.status_code != 400:
        return None
    if isinstance(exc.__cause__, RecursionError):
        return "the body is not valid JSON (nested too deeply)"
    if isinstance(exc.__cause__, UnicodeDecodeError):
        return "the body is not valid JSON (not UTF-8 text)"
    if isinstance(exc.__cause__, ValueError):
        return f"the body is not valid JSON ({exc.__cause__})"
    return None


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    if pages := _page(request):
        return pages(request, 500, "the server hit an unexpected error; it has been logged", exc)
    return error_response(
        500,
        "internal_error",
        "the server hit an unexpected error; it has been logged",
        [(None, "internal error")],
    )


def _field_of(loc: Sequence[Any], kind: str | None = None) -> str:
    if kind == "json_invalid":
        return "body"  # its loc holds the character position, not a field
    where = ("body", "query", "path", "header")
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in where else loc)]
    return ".".join(parts) if parts else str(loc[0]) if loc else "body"
