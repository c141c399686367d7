"""The interactive sessions' door: each session's own origin, proxied to its notebook server.

A request whose Host is `s<ID>.<sessions domain>` is a session's (domain.interactive.origin),
whatever its path; everything else goes on to the facility's app. On a session's origin:

- `/sessions/ID/_aifactory/enter?ticket=…` says whose session the portal's one-use ticket
  opens, and as whom; its button (a POST from that page) trades the ticket for a cookie of this
  origin alone (HttpOnly, SameSite=Lax) and lands on the notebook;
- any other request needs that cookie, or an API token (`Authorization: Bearer`), of someone
  who may use the session now (services.interactive: checked again at most `AUTH_TTL_S`
  later); without one a page load is sent to the portal to sign in and come back, anything
  else gets 401;
- it is then passed to the session's server over its Unix socket (opened as the gateway opens
  an engine's: the job's own socket, never a link it planted), HTTP streamed both ways, and
  WebSockets (kernels, terminals) frame by frame. The facility's cookies and the caller's
  credentials never reach the server: it gets its own token instead. What the server answers
  may set cookies for its own origin only (no Domain), never the facility's.

A session's page thus cannot act on the portal or on another session through the browser:
neither sends it their cookies, and it cannot read their pages (another origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from aifactory.domain import interactive
from aifactory.errors import AifactoryError, NotFound
from aifactory.executors.job_socket import JobServer, Relayed, open_job_socket
from aifactory.faces.state import AppState
from aifactory.services import interactive as sessions
from aifactory.services.auth import authenticate
from aifactory.store.models import InteractiveSession

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "aifactory_s"  # the pass of one session's origin (host-only)
FACILITY_COOKIES = frozenset({COOKIE, "aifactory_session"})  # never passed on
AUTH_TTL_S = 10.0  # a pass checked once is trusted this long (revocations land within it)
AUTH_KEPT = 4096
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
        "cookie",
        "content-length",
    }
)
WS_HEADERS_DROPPED = HOP_BY_HOP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "origin",
}
WS_MAX_MESSAGE = 64 * 1024 * 1024
MAX_WEBSOCKETS = 64  # open at once per session (kernels, terminals; each tab has a few)
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
TIMEOUT = httpx.Timeout(connect=5.0, read=600.0, write=600.0, pool=10.0)
CLIENT_IDLE_S = 60.0


@dataclass(slots=True)
class _Server:
    """One session server's HTTP client, over its own descriptor of the socket (-1: over
    the network, to its node's relay)."""

    fd: int
    client: httpx.AsyncClient
    used: float
    in_flight: int = 0  # answers being passed on (never closed under them)
    retired: bool = False  # forgotten: closed once its last answer is passed on


class SessionProxy:
    """ASGI: sessions' origins here, everything else to `app`."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self._passes: dict[tuple[str, int], tuple[sessions.Route, float]] = {}
        self._servers: dict[int, _Server] = {}
        self._sockets: Counter[int] = Counter()  # open WebSockets by session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            job_id = interactive.job_of_host(
                _header(scope, "host") or "", self.state.sessions_domain
            )
            if job_id is not None:
                await self._serve(job_id, scope, receive, send)
                return
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _closing_on_shutdown(send, self.close))
            return
        await self.app(scope, receive, send)

    async def close(self) -> None:
        for server in self._servers.values():
            await _close(server)
        self._servers.clear()

    async def _serve(self, job_id: int, scope: Scope, receive: Receive, send: Send) -> None:
        base = interactive.base_path(job_id)
        path: str = scope["path"]
        if not path.startswith(base):
            if scope["type"] == "http" and path in ("/", base.rstrip("/")):
                await _redirect(send, base)
            else:
                await _plain(scope, send, 404, "not found")
            return
        if path == base + interactive.ENTER and scope["type"] == "http":
            if scope["method"] == "POST":
                await self._enter(job_id, scope, receive, send)
            else:
                await self._confirm(job_id, scope, send)
            return
        route = await self._route(job_id, scope)
        if route is None:
            await self._unauthenticated(job_id, scope, send)
            return
        if scope["type"] == "http" and not _from_its_own_pages(scope):
            await _plain(scope, send, 403, "a change to a session comes from its own pages only")
            return
        if scope["type"] == "websocket":
            await self._websocket(route, scope, receive, send)
        else:
            await self._http(route, scope, receive, send)

    # ---- who ---------------------------------------------------------------------------

    async def _confirm(self, job_id: int, scope: Scope, send: Send) -> None:
        """A link's first step: whose session it opens, and as whom, with a button that
        trades the ticket. A link someone else made (a ticket lets in whoever holds it) is
        not followed without the browser's user seeing that it is not theirs."""
        ticket = _query(scope).get("ticket", "")
        try:
            found = await anyio.to_thread.run_sync(self._ticket, ticket, job_id)
        except AifactoryError as refused:
            await _plain(scope, send, 404, refused.message)
            return
        await _page(send, _confirmation(found, ticket))

    def _ticket(self, ticket: str, job_id: int) -> sessions.Ticket:
        with self.state.db.read() as session:
            return sessions.ticket_of(session, ticket, job_id, now=self.state.clock())

    async def _enter(self, job_id: int, scope: Scope, receive: Receive, send: Send) -> None:
        if not _from_its_own_pages(scope):
            await _plain(scope, send, 403, "a session is entered from its own page only")
            return
        form = await _small_form(receive)
        ticket = form.get("ticket", "")
        try:
            cookie, kind = await anyio.to_thread.run_sync(self._trade, ticket, job_id)
        except AifactoryError as refused:
            await _plain(
                scope, send, 404 if isinstance(refused, NotFound) else 400, refused.message
            )
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        landing = interactive.base_path(job_id) + interactive.Kind(kind).landing
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", landing.encode()),
                    (
                        b"set-cookie",
                        f"{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax{secure}".encode(),
                    ),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _trade(self, ticket: str, job_id: int) -> tuple[str, str]:
        with self.state.db.session() as session:
            cookie = sessions.enter(session, ticket, job_id, now=self.state.clock())
            row = session.get(InteractiveSession, job_id)
            return cookie, row.kind if row is not None else interactive.Kind.JUPYTER.value

    async def _route(self, job_id: int, scope: Scope) -> sessions.Route | None:
        cookie = _cookies(scope).get(COOKIE)
        bearer = _bearer(scope)
        if not cookie and not bearer:
            return None
        key = (("c:" + cookie) if cookie else ("b:" + (bearer or ""))), job_id
        now = time.monotonic()
        kept = self._passes.get(key)
        if kept is not None and kept[1] > now:
            return kept[0]
        route = await anyio.to_thread.run_sync(self._check, cookie, bearer, job_id)
        if route is None:
            self._passes.pop(key, None)
            return None
        if len(self._passes) >= AUTH_KEPT:
            self._passes = {k: v for k, v in self._passes.items() if v[1] > now}
            if len(self._passes) >= AUTH_KEPT:
                self._passes.clear()
        self._passes[key] = (route, now + AUTH_TTL_S)
        return route

    def _check(self, cookie: str | None, bearer: str | None, job_id: int) -> sessions.Route | None:
        now = self.state.clock()
        with self.state.db.read() as session:
            if cookie:
                return sessions.route_by_cookie(session, cookie, job_id, now=now)
            try:
                principal = authenticate(session, bearer, now)
            except AifactoryError:
                return None
            return sessions.route_for(session, principal, job_id)

    def _where(self, route: sessions.Route) -> JobServer:
        """The session's server (OSError: not reachable yet)."""
        found = self.state.session_server(route.job_id, route.attempt, interactive.SOCKET)
        if found is None:
            raise OSError("the session's server is not reachable yet")
        return found

    async def _unauthenticated(self, job_id: int, scope: Scope, send: Send) -> None:
        """A page load goes to the portal (sign in, then back through a ticket); the rest 401."""
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and _wants_page(scope):
            await _redirect(send, f"{self._portal(scope)}/sessions/{job_id}/open")
            return
        await _plain(scope, send, 401, "sign in through the portal, or send an API token")

    def _portal(self, scope: Scope) -> str:
        if self.state.public_url:
            return self.state.public_url.rstrip("/")
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        port = (scope.get("server") or (None, None))[1]
        default = 443 if scheme == "https" else 80
        shown = f":{port}" if port and port != default else ""
        return f"{scheme}://{self.state.sessions_domain}{shown}"

    # ---- HTTP --------------------------------------------------------------------------

    async def _http(
        self, route: sessions.Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = _upstream_headers(scope, route.token)
        target = (
            scope["raw_path"].decode("latin-1") if scope.get("raw_path") else quote(scope["path"])
        )
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        try:
            server = self._server(route)
        except OSError:
            await _starting(scope, send)
            return
        request = server.client.build_request(
            scope["method"], target, headers=headers, content=await _body(receive)
        )
        server.in_flight += 1
        try:
            answer = await server.client.send(request, stream=True)
        except httpx.TransportError:
            server.in_flight -= 1
            await self._forget(route.job_id)
            await _starting(scope, send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": _downstream_headers(answer.headers.multi_items()),
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (httpx.TransportError, OSError):
            pass  # the server or the browser went mid-answer: nothing more to send
        finally:
            await answer.aclose()
            server.in_flight -= 1
            server.used = time.monotonic()
            if server.retired and server.in_flight == 0:
                await _close(server)

    def _server(self, route: sessions.Route) -> _Server:
        self._sweep()
        server = self._servers.get(route.job_id)
        if server is None:
            where = self._where(route)
            if isinstance(where, Relayed):
                fd = -1
                transport = httpx.AsyncHTTPTransport(verify=where.context)
                base = f"https://{_netloc(where)}"
            else:
                fd = open_job_socket(where)
                transport = httpx.AsyncHTTPTransport(uds=f"/proc/self/fd/{fd}")
                base = "http://session"
            client = httpx.AsyncClient(transport=transport, base_url=base, timeout=TIMEOUT)
            server = self._servers[route.job_id] = _Server(fd, client, time.monotonic())
        return server

    async def _forget(self, job_id: int) -> None:
        server = self._servers.pop(job_id, None)
        if server is not None:
            server.retired = True
            if server.in_flight == 0:
                await _close(server)

    def _sweep(self) -> None:
        now = time.monotonic()
        for job_id, server in list(self._servers.items()):
            if server.in_flight == 0 and now - server.used > CLIENT_IDLE_S:
                del self._servers[job_id]
                asyncio.get_running_loop().create_task(_close(server))

    # ---- WebSockets ----------------------------------------------------------------------

    async def _websocket(
        self, route: sessions.Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        host = _header(scope, "host") or ""
        scheme = "https" if scope.get("scheme") == "wss" else "http"
        if _header(scope, "origin") not in (None, f"{scheme}://{host}"):
            await send({"type": "websocket.close", "code": 1008})  # another site's page
            return
        if self._sockets[route.job_id] >= MAX_WEBSOCKETS:
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        try:
            where = self._where(route)
            fd = -1 if isinstance(where, Relayed) else open_job_socket(where)
        except OSError:
            await send({"type": "websocket.close", "code": 1011})
            return
        self._sockets[route.job_id] += 1
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        options: dict[str, Any] = {
            "additional_headers": _upstream_headers(scope, route.token, drop=WS_HEADERS_DROPPED),
            "origin": None,
            "subprotocols": _subprotocols(scope),
            "max_size": WS_MAX_MESSAGE,
            "max_queue": 2,  # what the server sends waits in its socket, not in memory here
            "compression": None,
            "open_timeout": 10,
        }
        if isinstance(where, Relayed):
            opened = connect(
                f"wss://{_netloc(where)}{target}",
                ssl=where.context,
                server_hostname=where.host,
                **options,
            )
        else:
            opened = unix_connect(f"/proc/self/fd/{fd}", uri=f"ws://{host}{target}", **options)
        try:
            async with opened as upstream:
                await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
                await _pump(upstream, receive, send)
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011})
        finally:
            if fd >= 0:
                os.close(fd)
            self._sockets[route.job_id] -= 1
            if not self._sockets[route.job_id]:
                del self._sockets[route.job_id]


async def _pump(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Frames both ways until either side closes."""

    async def down() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                if isinstance(message, str):
                    await send({"type": "websocket.send", "text": message})
                else:
                    await send({"type": "websocket.send", "bytes": message})
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    async def up() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close()
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async with anyio.create_task_group() as group:

        async def both(part: Callable[[], Awaitable[None]]) -> None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await part()
            group.cancel_scope.cancel()

        group.start_soon(both, down)
        group.start_soon(both, up)


# ---- helpers -------------------------------------------------------------------------------


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope) -> dict[str, str]:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[0] for k, v in query.items() if v}


async def _small_form(receive: Receive, most: int = 4096) -> dict[str, str]:
    """A form's fields (application/x-www-form-urlencoded), at most `most` bytes of it."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > most:
            return {}
        if not message.get("more_body"):
            break
    return {k: v[0] for k, v in parse_qs(body.decode("latin-1")).items() if v}


def _confirmation(found: sessions.Ticket, ticket: str) -> bytes:
    what = "JupyterLab" if found.kind == interactive.Kind.JUPYTER.value else "a terminal"
    mine = found.owner == found.user
    whose = "your session" if mine else f"the session {html.escape(found.owner)} started"
    return f"""<!doctype html><html lang="en"><meta charset="utf-8">
<title>Open session {found.job_id}</title>
<style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}
button{{font:inherit;padding:.5em 1.5em}}</style>
<h1>Open session {found.job_id}?</h1>
<p>This opens {whose} in project <b>{html.escape(found.project)}</b> ({what}), signed in as
<b>{html.escape(found.user)}</b>: what you do there is done as {html.escape(found.user)}.</p>
<form method="post"><input type="hidden" name="ticket" value="{html.escape(ticket)}">
<button type="submit" autofocus>Open</button></form>
<p>Did someone send you this link? Then close this page: it is not yours to open.</p>
</html>""".encode()


async def _page(send: Send, body: bytes) -> None:
    await _whole(
        send, 200, body,
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"same-origin"),  # no-referrer: its POST's Origin null
        (b"x-frame-options", b"DENY"),
        (
            b"content-security-policy",
            b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            b"frame-ancestors 'none'",
        ),
    )  # fmt: skip


async def _whole(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    """An answer of the proxy's own, in one piece, with its length."""
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


def _subprotocols(scope: Scope) -> list[Subprotocol] | None:
    offered = (_header(scope, "sec-websocket-protocol") or "").split(",")
    return [Subprotocol(p.strip()) for p in offered if p.strip()] or None


def _cookies(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        if key.lower() == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(Exception):
                jar.load(bytes(value).decode("latin-1"))
            found.update({k: m.value for k, m in jar.items()})
    return found


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, "authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _wants_page(scope: Scope) -> bool:
    accept = _header(scope, "accept") or ""
    return "text/html" in accept or not accept


def _upstream_headers(
    scope: Scope, token: str, *, drop: frozenset[str] = HOP_BY_HOP
) -> list[tuple[str, str]]:
    """The caller's headers without the facility's cookies and the caller's credentials; the
    server's own token instead, and the Host it checks Origin against."""
    headers = [
        (k.decode("latin-1"), bytes(v).decode("latin-1"))
        for k, v in scope.get("headers", ())
        if k.decode("latin-1").lower() not in drop
    ]
    kept = [f"{k}={v}" for k, v in _cookies(scope).items() if k not in FACILITY_COOKIES]
    if kept:
        headers.append(("cookie", "; ".join(kept)))
    headers.append(("authorization", f"token {token}"))
    if "host" not in {k for k, _ in headers} and drop is HOP_BY_HOP:
        headers.append(("host", _header(scope, "host") or "session"))
    return headers


def _downstream_headers(items: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The server's answer's headers, less hop-by-hop ones; its cookies for its origin only."""
    out: list[tuple[bytes, bytes]] = []
    for key, value in items:
        name = key.lower()
        if name in HOP_BY_HOP - {"content-length"}:
            continue
        if name == "set-cookie":
            cookie = _own_cookie(value)
            if cookie is None:
                continue
            value = cookie
        out.append((name.encode("latin-1"), value.encode("latin-1")))
    return out


def _own_cookie(value: str) -> str | None:
    """A cookie the session's server sets, kept to its own host: no Domain attribute (however
    spelt), and never a name of the facility's (aifactory…, with or without a prefix)."""
    name, *attributes = value.split(";")
    plain = name.split("=", 1)[0].strip().lower()
    for prefix in ("__host-", "__secure-"):
        plain = plain.removeprefix(prefix)
    if not plain or plain.startswith("aifactory"):
        return None
    kept = [a for a in attributes if a.split("=", 1)[0].strip().lower() != "domain"]
    return ";".join([name, *kept])


def _from_its_own_pages(scope: Scope) -> bool:
    """A request that may change something (not GET, HEAD, OPTIONS) comes from the session's
    own pages, or from no page at all (an API client): never from another site's page, such
    as another session's (browsers say where from: Origin, Sec-Fetch-Site)."""
    if scope["method"] in SAFE:
        return True
    origin = _header(scope, "origin")
    scheme = "https" if scope.get("scheme") == "https" else "http"
    if origin is not None and origin != f"{scheme}://{_header(scope, 'host')}":
        return False
    fetched = _header(scope, "sec-fetch-site")
    return fetched is None or fetched in ("same-origin", "none")


async def _body(receive: Receive) -> bytes | AsyncIterator[bytes]:
    """The request's body: bytes when it came in one piece (sent with its length), else
    streamed on as it comes (chunked)."""
    first = await receive()
    if first["type"] == "http.disconnect" or not first.get("more_body"):
        return bytes(first.get("body", b""))

    async def rest() -> AsyncIterator[bytes]:
        yield bytes(first.get("body", b""))
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if message.get("body"):
                yield bytes(message["body"])
            if not message.get("more_body"):
                return

    return rest()


async def _redirect(send: Send, location: str) -> None:
    await _whole(send, 303, b"", (b"location", location.encode()))


async def _plain(scope: Scope, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode() + b"\n"
    plain = (b"content-type", b"text/plain; charset=utf-8")
    await _whole(send, status, body, plain, (b"cache-control", b"no-store"))


async def _starting(scope: Scope, send: Send) -> None:
    """The server does not answer yet (it starts) or any more (it stopped)."""
    if not _wants_page(scope):
        await _plain(scope, send, 502, "the session's server is not answering")
        return
    body = (
        b"<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=2>"
        b"<title>Starting</title><p>The session's server is starting (or has stopped): this "
        b"page tries again every 2 seconds.</p>"
    )
    await _whole(
        send, 502, body,
        (b"content-type", b"text/html; charset=utf-8"),
        (b"retry-after", b"2"),
        (b"cache-control", b"no-store"),
    )  # fmt: skip


async def _close(server: _Server) -> None:
    try:
        await server.client.aclose()
    finally:
        if server.fd >= 0:
            os.close(server.fd)


def _netloc(where: Relayed) -> str:
    return f"[{where.host}]:{where.port}" if ":" in where.host else f"{where.host}:{where.port}"


def _closing_on_shutdown(send: Send, close: Callable[[], Awaitable[None]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            await close()
        await send(message)

    return wrapped
