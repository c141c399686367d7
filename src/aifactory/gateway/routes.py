"""`/v1`: `models`, `completions` and `chat/completions` as the OpenAI API has them, for the
models a project serves (services.endpoints), with its inference keys.

A request is checked (services.gateway.authorize: the key, the model, the budgets; then the
key's requests and tokens per minute, gateway.limits) before any engine is asked; then
forwarded to the replica with the fewest requests in flight, over the Unix socket in the
replica's own directory (engines take no connection from anywhere else). A replica that cannot
be reached is passed over for the next. When every replica has its endpoint's `concurrency` in
flight, the request waits for one (at most `gateway_queue_s`, then 503 with Retry-After); when
none runs, it asks for one and waits for its cold start (at most `gateway_cold_start_s`). The
time a request spends here, waiting included, is what the autoscaler reads as load.

What the engine says of its tokens (`usage`) is recorded against the key and the project
(gateway.usage: in batches; a budgeted key's before it answers); a streamed request asks the
engine for its usage in a last chunk, which the caller gets only if it asked for it too.
Errors have the API's shape: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aifactory.executors.job_socket import open_job_socket
from aifactory.faces.state import AppState, StateDep
from aifactory.gateway.engine_client import EngineClient
from aifactory.gateway.limits import limits
from aifactory.gateway.usage import recorder
from aifactory.services import gateway
from aifactory.services.auth import hash_token
from aifactory.services.gateway import Refusal, Route, Used

router = APIRouter(prefix="/v1", include_in_schema=False)
MAX_BODY = 1024 * 1024
ENGINE_TIMEOUT_S = 600.0
_in_flight: dict[Path, int] = {}  # requests forwarded and not answered, by replica's socket
_freed: dict[int, list[asyncio.Event]] = {}  # by endpoint: set when one of its requests ends
_wanted: dict[int, float] = {}  # endpoint → when this process last asked for a replica
_retired: dict[Path, list[EngineClient]] = {}  # forgotten, closed when their requests end
WANT_EVERY_S = 1.0
COLD_POLL_S = 0.25
ENGINE_IDLE_S = 60.0  # a client unused this long (its replica gone or idle) is closed
SWEEP_EVERY_S = 10.0
_engines: dict[Path, EngineClient] = {}  # replica's socket → its client
_swept = [0.0]
ROUTE_TTL_S = 1.0
ROUTES_KEPT = 10_000
_routes: dict[tuple[int, str | None, str | None], tuple[Route, float]] = {}  # → until


@router.get("/models")
async def list_models(request: Request, state: StateDep) -> Response:
    token = _token(request)
    try:
        found = await run_in_threadpool(_models, state, token)
    except Refusal as refused:
        return _error(refused)
    data = [
        {"id": name, "object": "model", "created": int(created), "owned_by": "aifactory"}
        for name, created in found
    ]
    return JSONResponse({"object": "list", "data": data})


@router.post("/completions")
async def completions(request: Request, state: StateDep) -> Response:
    return await _forward(request, state, "/v1/completions")


@router.post("/chat/completions")
async def chat_completions(request: Request, state: StateDep) -> Response:
    return await _forward(request, state, "/v1/chat/completions")


async def _forward(request: Request, state: AppState, path: str) -> Response:
    started = time.monotonic()
    try:
        body = _json_body(await request.body())
        streamed = body.get("stream", False)
        if not isinstance(streamed, bool):  # an engine may read "1" as true: unmetered tokens
            raise Refusal(400, "stream must be true or false", "invalid_request_error")
        token, model = _token(request), body.get("model")
        route = _cached(state, token, model)  # most requests: no thread, no database
        if route is None:
            route = await _authorized(state, token, model)
        limits().admit(route, started)
        if not _ready(route, set()):
            route = await _cold_start(state, token, model, route, set())
    except Refusal as refused:
        return _error(refused)
    wanted = _wanted_usage(body) if streamed else Wanted()
    if streamed:  # the engine's usage in every chunk: a stream cut short is metered too
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    tried: set[Path] = set()
    queued = time.monotonic()
    while True:
        fresh = _cached(state, token, model) or route  # a replica started or drained meanwhile
        socket = await _slot(state, fresh, tried, started, queued)
        if isinstance(socket, Response):
            return socket
        if isinstance(socket, _Again):
            continue
        if socket is None:  # none of those known answers: wait for one that does
            try:
                route = await _cold_start(state, token, model, route, tried)
            except Refusal as refused:
                return _error(refused)
            continue
        try:
            if streamed:
                return await _stream(state, fresh, socket, path, body, wanted, started)
            return await _whole(state, fresh, socket, path, body, started)
        except OSError:  # EngineGone too
            tried.add(socket)  # gone, not listening yet, or its socket is not one: the next
            _forget(socket)


async def _authorized(state: AppState, token: str | None, model: object) -> Route:
    route: Route = await run_in_threadpool(_authorize, state, token, model)
    return route


def _ready(route: Route, tried: set[Path]) -> bool:
    return any(os.path.exists(s) for s in route.sockets if s not in tried)


async def _cold_start(
    state: AppState, token: str | None, model: object, route: Route, tried: set[Path]
) -> Route:
    """No replica listens (none runs, or those that did were gone when tried): ask the
    autoscaler for one and wait until one does — a cold start, or an endpoint healing."""
    deadline = time.monotonic() + state.gateway_cold_start_s
    while True:
        if route.trouble:
            raise Refusal(
                503, f"{route.model} cannot start: {route.trouble}", "server_error", "unavailable"
            )
        if _ready(route, tried):
            return route
        if time.monotonic() >= deadline:
            raise Refusal(
                503,
                f"no replica of {route.model} started within {state.gateway_cold_start_s:.0f} s; "
                "try again shortly",
                "server_error",
                "unavailable",
                retry_after=10,
            )
        if time.monotonic() - _wanted.get(route.endpoint_id, float("-inf")) >= WANT_EVERY_S:
            _wanted[route.endpoint_id] = time.monotonic()
            await run_in_threadpool(_want, state, route.endpoint_id)
        await asyncio.sleep(COLD_POLL_S)  # the route cache: a key's waiters ask once a second
        cached = _cached(state, token, model)
        route = cached if cached is not None else await _authorized(state, token, model)


class _Again:
    """_slot's answer while every replica is busy: look at the route afresh and ask again."""


AGAIN = _Again()


async def _slot(
    state: AppState, route: Route, tried: set[Path], started: float, queued: float
) -> Path | Response | _Again | None:
    """The replica with the fewest requests in flight below the endpoint's concurrency, counted
    as taken. While all are full: wait until one frees up or ROUTE_TTL_S passes, then AGAIN
    (the caller looks at the route afresh: a replica started meanwhile, or one drained), at
    most `gateway_queue_s` in all. None: every replica of the route was tried."""
    left = [s for s in route.sockets if s not in tried]
    if not left:
        return None
    free = [s for s in left if _in_flight.get(s, 0) < route.concurrency]
    if free:
        socket = min(free, key=lambda s: _in_flight.get(s, 0))
        _in_flight[socket] = _in_flight.get(socket, 0) + 1
        return socket
    remaining = queued + state.gateway_queue_s - time.monotonic()
    if remaining <= 0:
        _later(state, route, {}, 503, started)  # the autoscaler sees the wait as load
        busy = Refusal(
            503,
            f"every replica of {route.model} is busy; try again shortly",
            "server_error",
            "overloaded",
            retry_after=1,
        )
        return _error(busy)
    freed = asyncio.Event()
    waiting = _freed.setdefault(route.endpoint_id, [])
    waiting.append(freed)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(freed.wait(), timeout=min(remaining, ROUTE_TTL_S))
    finally:
        with contextlib.suppress(ValueError):
            waiting.remove(freed)
        if not waiting:
            _freed.pop(route.endpoint_id, None)
    return AGAIN


def _release(socket: Path, endpoint_id: int) -> None:
    _in_flight[socket] -= 1
    for waiting in _freed.get(endpoint_id, ()):
        waiting.set()
    if _in_flight[socket] == 0:
        for client in _retired.pop(socket, []):
            client.close()


async def _whole(
    state: AppState, route: Route, socket: Path, path: str, body: dict[str, Any], started: float
) -> Response:
    try:
        answer = await _engine(socket).post(path, _json_bytes(body))
    finally:
        _release(socket, route.endpoint_id)
    usage = _usage(answer.body) if answer.status == 200 else {}
    limits().used(route, usage, time.monotonic())
    if route.budgeted:  # counted before the answer: the next call sees it
        await run_in_threadpool(_record, state, route, usage, answer.status, started)
        return Response(answer.body, answer.status, media_type="application/json")
    _later(state, route, usage, answer.status, started)
    return Response(answer.body, answer.status, media_type="application/json")


async def _stream(
    state: AppState,
    route: Route,
    socket: Path,
    path: str,
    body: dict[str, Any],
    wanted: Wanted,
    started: float,
) -> Response:
    """The engine's events as they come, each with its usage so far (kept for the record,
    passed on only as the caller asked), so a stream cut short is metered as far as it got."""
    try:
        upstream = await _engine(socket).open_stream(path, _json_bytes(body))
    except BaseException:
        _release(socket, route.endpoint_id)
        raise
    if upstream.status != 200:
        try:
            content = await upstream.read()
        finally:
            await upstream.aclose()
            _release(socket, route.endpoint_id)
        return Response(content, upstream.status, media_type="application/json")

    async def events() -> AsyncIterator[bytes]:
        usage: dict[str, int] = {}
        status, finished = 200, False
        try:
            with contextlib.suppress(OSError):  # EngineGone too: the stream just ends
                async for line in upstream.lines():
                    event = _event(line)
                    if event is not None and isinstance(event.get("usage"), dict):
                        usage = _tokens(event["usage"]) or usage
                        line = _passed_on(line, event, wanted)
                    if line:
                        yield (line + "\n\n").encode()
                    finished = line == "data: [DONE]"
            if not finished:  # the replica went away mid-stream (it ends its streams so)
                status = 502
                yield _error_event("the model's replica stopped while answering; try again")
        finally:
            with anyio.CancelScope(shield=True):  # a caller that left is metered all the same
                await upstream.aclose()
                _release(socket, route.endpoint_id)
                limits().used(route, usage, time.monotonic())
                if route.budgeted:  # counted before the stream's end
                    await run_in_threadpool(_record, state, route, usage, status, started)
                else:
                    _later(state, route, usage, status, started)

    return StreamingResponse(events(), media_type="text/event-stream")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a streaming caller asked of usage (`stream_options`)."""

    usage: bool = False  # the last chunk's
    continuous: bool = False  # in every chunk


def _wanted_usage(body: dict[str, Any]) -> Wanted:
    options = body.get("stream_options")
    if not isinstance(options, dict):
        return Wanted()
    usage = options.get("include_usage") is True
    return Wanted(usage, usage and options.get("continuous_usage_stats") is True)


def _event(line: str) -> dict[str, Any] | None:
    """A `data: {...}` event's object."""
    if not line.startswith("data: {"):
        return None
    try:
        event = json.loads(line[6:])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _passed_on(line: str, event: dict[str, Any], wanted: Wanted) -> str:
    """The line as the caller asked for it: the usage-only last chunk only if they asked for
    usage, other chunks' usage only if they asked for it in every chunk."""
    if not event.get("choices"):
        return line if wanted.usage else ""
    if wanted.continuous:
        return line
    del event["usage"]
    return "data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":"))


@contextlib.contextmanager
def engine_socket(socket: Path) -> Iterator[str]:
    """The path to connect to for `socket` (open_job_socket), while the block runs."""
    fd = open_job_socket(socket)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _engine(socket: Path) -> EngineClient:
    """The replica's client, its connections kept (the engine keeps them alive): made once per
    socket, over the descriptor checked then and owned by it; forgotten when the replica stops
    answering, closed once unused for ENGINE_IDLE_S."""
    _sweep()
    client = _engines.get(socket)
    if client is None:
        client = _engines[socket] = EngineClient(
            open_job_socket(socket), timeout_s=ENGINE_TIMEOUT_S
        )
    return client


def _sweep() -> None:
    now = time.monotonic()
    if now - _swept[0] < SWEEP_EVERY_S:
        return
    _swept[0] = now
    for socket, client in list(_engines.items()):
        if not _in_flight.get(socket) and now - client.last_used > ENGINE_IDLE_S:
            del _engines[socket]
            client.close()


def close_engines(jobs_dir: Path) -> None:
    """The clients of the replicas under `jobs_dir` closed (the app serving them stops)."""
    for socket in [s for s in _engines if s.is_relative_to(jobs_dir)]:
        _engines.pop(socket).close()
    for socket in [s for s in _retired if s.is_relative_to(jobs_dir)]:
        for client in _retired.pop(socket):
            client.close()


def _forget(socket: Path) -> None:
    """No new request goes to this client; it is closed once the requests it carries end (a
    replica that stops taking connections still finishes those it has: drain, preemption)."""
    client = _engines.pop(socket, None)
    if client is not None:
        client.retire()  # no new connection through its descriptor, which stays its own
        if _in_flight.get(socket, 0) == 0:
            client.close()
        else:
            _retired.setdefault(socket, []).append(client)


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _usage(content: bytes) -> dict[str, int]:
    try:
        found = json.loads(content).get("usage") or {}
    except (ValueError, AttributeError):
        return {}
    return _tokens(found)


def _tokens(usage: Any) -> dict[str, int]:
    if not isinstance(usage, dict):
        return {}
    return {
        k: int(usage[k])
        for k in ("prompt_tokens", "completion_tokens")
        if isinstance(usage.get(k), int) and usage[k] >= 0
    }


def _json_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY:
        raise Refusal(413, "the request is too large", "invalid_request_error")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refusal(400, "the body is not JSON", "invalid_request_error") from None
    if not isinstance(body, dict):
        raise Refusal(400, "the body must be a JSON object", "invalid_request_error")
    return body


def _token(request: Request) -> str | None:
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _cached(state: AppState, token: str | None, model: object) -> Route | None:
    found = _routes.get(_route_key(state, token, model))
    return found[0] if found is not None and found[1] > state.clock() else None


def _route_key(
    state: AppState, token: str | None, model: object
) -> tuple[int, str | None, str | None]:
    """By the key's hash: the cache keeps no key itself."""
    hashed = hash_token(token) if token else None
    return (id(state), hashed, model if isinstance(model, str) else None)


def _authorize(state: AppState, token: str | None, model: object) -> Route:
    """The route for this key and model, from a cache of ROUTE_TTL_S: a key revoked, a replica
    started or drained is seen that much later at the most (as the API's principals; the
    autoscaler drains for longer than that). A budgeted key's routes are dropped as soon as a
    request of it is counted, so its next request reads its budget afresh (another worker
    process within ROUTE_TTL_S)."""
    assert state.jobs_dir is not None
    now = state.clock()
    cache_key = _route_key(state, token, model)
    with state.db.read() as session:
        route = gateway.authorize(session, token, model, jobs_dir=state.jobs_dir, now=now)
    if len(_routes) > ROUTES_KEPT:
        _routes.clear()
    _routes[cache_key] = (route, now + ROUTE_TTL_S)
    return route


def _want(state: AppState, endpoint_id: int) -> None:
    with state.db.session() as session:
        gateway.want_replica(session, endpoint_id, now=state.clock())


def _models(state: AppState, token: str | None) -> list[tuple[str, float]]:
    with state.db.read() as session:
        return gateway.models(session, token, now=state.clock())


def _later(
    state: AppState, route: Route, usage: dict[str, int], status: int, started: float
) -> None:
    """An unbudgeted key's usage, written with the next batch (gateway.usage)."""
    recorder(state).add(_used(state, route, usage, status, started))


def _record(
    state: AppState, route: Route, usage: dict[str, int], status: int, started: float
) -> None:
    """The request's usage, at once; a budgeted key's routes are then looked up afresh."""
    with state.db.session() as session:
        gateway.record(session, [_used(state, route, usage, status, started)])
    if route.budgeted:
        for cached in [k for k, (r, _) in list(_routes.items()) if r.key_id == route.key_id]:
            _routes.pop(cached, None)


def _used(
    state: AppState, route: Route, usage: dict[str, int], status: int, started: float
) -> Used:
    return Used(
        route,
        usage.get("prompt_tokens", 0),
        usage.get("completion_tokens", 0),
        status,
        (time.monotonic() - started) * 1000,
        state.clock(),
    )


def _error_event(message: str) -> bytes:
    """An error in a stream already under way, as the API sends one (clients raise it)."""
    error = {"message": message, "type": "server_error", "param": None, "code": "replica_lost"}
    return f"data: {json.dumps({'error': error})}\n\n".encode()


def _error(refused: Refusal) -> Response:
    error = {"message": str(refused), "type": refused.kind, "param": None, "code": refused.code}
    retry = refused.retry_after if refused.retry_after is not None else None
    if retry is None and refused.status == 429:
        retry = 60
    headers = {"Retry-After": str(max(1, round(retry)))} if retry is not None else None
    return JSONResponse({"error": error}, status_code=refused.status, headers=headers)
