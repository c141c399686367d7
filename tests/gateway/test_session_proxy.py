"""The sessions' door (gateway.session_proxy) through the real app, with a hostile notebook
server on the session's real socket: it echoes what reached it and tries to set the facility's
cookies. Each session is served on its own origin only, to whoever may use it; the server gets
its own token and never the facility's cookies or the caller's credentials."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, unix_serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

from aifactory.domain import interactive
from aifactory.domain.interactive import SessionSpec
from aifactory.domain.jobfiles import work_dir
from aifactory.domain.jobs import JobState
from aifactory.gateway import session_proxy
from aifactory.services.auth import principal_of
from aifactory.services.interactive import open_ticket, start_session
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import InteractiveSession, Job
from tests.conftest import LiveServer

PORTAL_COOKIE = "aifactory_session"


class HostileServer:
    """A notebook server that is the project's code: on the session's socket, it answers every
    HTTP request with what it received and cookies it should not set, and echoes WebSocket
    messages (recording the handshake's headers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(self._serve())
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self) -> Server:
        return await unix_serve(
            self._echo,
            path=str(self.path),
            process_request=self._http,
            subprotocols=["v1.kernel.websocket.jupyter.org"],  # type: ignore[list-item]
        )

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        self.seen.append({"path": request.path, "headers": dict(request.headers.raw_items())})
        if request.headers.get("upgrade", "").lower() == "websocket":
            return None
        body = json.dumps({"path": request.path, "headers": list(request.headers.raw_items())})
        headers = Headers(
            [
                ("Content-Type", "application/json"),
                ("Set-Cookie", "mine=1; Path=/; Domain=localhost"),
                ("Set-Cookie", "spaced=1; Path=/; Domain\t =localhost"),
                ("Set-Cookie", f"{PORTAL_COOKIE}=forged; Path=/"),
                ("Set-Cookie", "aifactory_s=forged; Path=/"),
                ("Set-Cookie", "AIFACTORY_login=forged; Path=/"),
                ("Set-Cookie", "__Host-aifactory_s=forged; Path=/; Secure"),
            ]
        )
        return Response(HTTPStatus.OK, "OK", headers, body.encode())

    async def _echo(self, connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class World:
    server: LiveServer
    session_id: int
    other_id: int  # another running session of the same project (started by the admin)
    hostile: HostileServer
    token: str  # the session's own notebook token
    outsider: str  # the API token of a user of another project
    admin: str

    def host(self, session_id: int | None = None) -> str:
        port = self.server.url.rsplit(":", 1)[1]
        return f"s{session_id or self.session_id}.localhost:{port}"

    def get(self, path: str, *, session_id: int | None = None, **kw: Any) -> httpx.Response:
        headers = {"Host": self.host(session_id), **kw.pop("headers", {})}
        return httpx.get(self.server.url + path, headers=headers, timeout=10, **kw)

    def ticket(self, session_id: int | None = None) -> str:
        with self.server.db.session() as s:
            admin = principal_of(s, user_by_name(s, "admin"))
            return open_ticket(s, admin, session_id or self.session_id, now=time.time())

    def post(self, path: str, *, session_id: int | None = None, **kw: Any) -> httpx.Response:
        headers = {"Host": self.host(session_id), **kw.pop("headers", {})}
        return httpx.post(self.server.url + path, headers=headers, timeout=10, **kw)

    def trade(self, ticket: str, session_id: int | None = None, **headers: str) -> httpx.Response:
        """The confirmation page's button: its POST, from its own page."""
        sid = session_id or self.session_id
        own = {"Origin": f"http://{self.host(sid)}", **headers}
        return self.post(
            f"/sessions/{sid}/_aifactory/enter", session_id=sid, data={"ticket": ticket},
            headers=own,
        )  # fmt: skip

    def enter(self, session_id: int | None = None) -> str:
        """The cookie of the session's origin, through a fresh ticket."""
        sid = session_id or self.session_id
        entered = self.trade(self.ticket(sid), sid)
        assert entered.status_code == 303, entered.text
        return entered.headers["set-cookie"].split(";")[0].split("=", 1)[1]


def _running_session(live: LiveServer) -> tuple[int, str]:
    with live.db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        view = start_session(s, admin, SessionSpec(project=None), now=time.time())
        job = s.get(Job, view.id)
        assert job is not None
        job.state, job.started_at = JobState.RUNNING.value, time.time()
        row = s.get(InteractiveSession, view.id)
        assert row is not None
        return view.id, row.notebook_token


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: the door reads what services.interactive reads (tested on both)."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def world(live_server: LiveServer) -> Iterator[World]:
    jobs_dir = live_server.state.jobs_dir
    assert jobs_dir is not None
    session_id, token = _running_session(live_server)
    other_id, _ = _running_session(live_server)
    directory = work_dir(jobs_dir / str(session_id))
    directory.mkdir(parents=True)
    hostile = HostileServer(directory / interactive.SOCKET)
    admin = {"Authorization": f"Bearer {live_server.admin_token}"}
    api = f"{live_server.url}/api/v1"
    httpx.post(f"{api}/organisations", json={"name": "o", "kind": "university"}, headers=admin)
    made = httpx.post(f"{api}/users", json={"name": "eve"}, headers=admin).json()
    httpx.post(
        f"{api}/projects", json={"name": "elsewhere", "organisation": "o", "owner": "eve"},
        headers=admin,
    )  # fmt: skip
    yield World(
        live_server, session_id, other_id, hostile, token, made["token"], admin["Authorization"]
    )
    hostile.stop()


def test_a_ticket_is_traded_once_for_a_cookie_of_the_sessions_origin_alone(world: World) -> None:
    ticket = world.ticket()
    path = f"/sessions/{world.session_id}/_aifactory/enter?ticket={ticket}"
    shown = world.get(path)  # first whose session it opens, and as whom
    assert shown.status_code == 200
    assert f"Open session {world.session_id}?" in shown.text
    assert "signed in as\n<b>admin</b>" in shown.text
    assert shown.headers["x-frame-options"] == "DENY"  # no page frames it to click it
    assert shown.headers["referrer-policy"] == "same-origin"  # its ticket goes nowhere else
    elsewhere = world.trade(ticket, Origin="http://s999.localhost")  # another page's button
    assert elsewhere.status_code == 403
    entered = world.trade(ticket)
    assert entered.status_code == 303
    assert entered.headers["location"] == f"/sessions/{world.session_id}/lab"
    cookie = entered.headers["set-cookie"]
    assert cookie.startswith("aifactory_s=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Domain" not in cookie
    assert world.trade(ticket).status_code == 404  # once
    assert world.get(path).status_code == 404
    other = world.ticket()
    assert world.trade(other, world.other_id).status_code == 404  # another session's door


def test_the_server_gets_its_own_token_never_the_facilitys_cookies(world: World) -> None:
    cookie = world.enter()
    answer = world.get(
        f"/sessions/{world.session_id}/api/echo",
        headers={
            "Cookie": f"aifactory_s={cookie}; {PORTAL_COOKIE}=portal-secret; _xsrf=abc",
            "Accept": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    seen = {k.lower(): v for k, v in answer.json()["headers"]}
    assert seen["authorization"] == f"token {world.token}"
    assert seen["cookie"] == "_xsrf=abc"  # the session's own cookies only
    assert "portal-secret" not in answer.text
    assert cookie not in answer.text
    # What it may set: cookies of its own origin (no Domain); never the facility's.
    set_cookies = answer.headers.get_list("set-cookie")
    assert set_cookies == ["mine=1; Path=/", "spaced=1; Path=/"]


def test_an_api_token_of_someone_who_may_use_it_works_and_is_not_passed_on(world: World) -> None:
    answer = world.get(
        f"/sessions/{world.session_id}/api/echo",
        headers={"Authorization": world.admin, "Accept": "application/json"},
    )
    assert answer.status_code == 200
    assert world.server.admin_token not in answer.text


def test_no_pass_no_entry(world: World) -> None:
    page = world.get(f"/sessions/{world.session_id}/lab", headers={"Accept": "text/html"})
    assert page.status_code == 303  # a browser: to the portal, to sign in and come back
    port = world.server.url.rsplit(":", 1)[1]
    assert page.headers["location"] == f"http://localhost:{port}/sessions/{world.session_id}/open"
    api = world.get(f"/sessions/{world.session_id}/api/kernels", headers={"Accept": "*/*"})
    assert api.status_code == 401
    outsider = world.get(
        f"/sessions/{world.session_id}/api/echo",
        headers={"Authorization": f"Bearer {world.outsider}", "Accept": "application/json"},
    )
    assert outsider.status_code == 401
    forged = world.get(
        f"/sessions/{world.session_id}/api/echo",
        headers={"Cookie": "aifactory_s=forged", "Accept": "application/json"},
    )
    assert forged.status_code == 401
    assert world.hostile.seen == []  # none of it reached the server


def test_a_cookie_of_one_session_opens_no_other(world: World) -> None:
    cookie = world.enter()
    answer = world.get(
        f"/sessions/{world.other_id}/api/echo",
        session_id=world.other_id,
        headers={"Cookie": f"aifactory_s={cookie}", "Accept": "application/json"},
    )
    assert answer.status_code == 401
    # and on its own origin, only its own base path is served: not the portal, not the API
    for path in ("/api/v1/health", "/login", f"/sessions/{world.other_id}/lab"):
        assert world.get(path, headers={"Cookie": f"aifactory_s={cookie}"}).status_code == 404


def test_a_session_that_ended_is_not_served(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_proxy, "AUTH_TTL_S", 0.5)
    cookie = world.enter()
    with world.server.db.session() as s:
        job = s.get(Job, world.session_id)
        assert job is not None
        job.state = JobState.CANCELLED.value
    time.sleep(0.6)  # a pass checked once is trusted for AUTH_TTL_S
    answer = world.get(
        f"/sessions/{world.session_id}/api/echo",
        headers={"Cookie": f"aifactory_s={cookie}", "Accept": "application/json"},
    )
    assert answer.status_code == 401


def test_a_link_planted_for_the_socket_is_not_followed(world: World, tmp_path: Path) -> None:
    """The job replaces its socket with a link to another socket (the facility would connect
    as root): the proxy refuses it."""
    elsewhere = HostileServer(tmp_path / "elsewhere.sock")
    try:
        socket = world.hostile.path
        socket.unlink()
        os.symlink(elsewhere.path, socket)
        cookie = world.enter()
        answer = world.get(
            f"/sessions/{world.session_id}/api/echo",
            headers={"Cookie": f"aifactory_s={cookie}", "Accept": "application/json"},
        )
        assert answer.status_code == 502
        assert elsewhere.seen == []
    finally:
        elsewhere.stop()


def test_websockets_pass_frames_both_ways_from_the_sessions_own_pages(world: World) -> None:
    cookie = world.enter()
    port = int(world.server.url.rsplit(":", 1)[1])
    origin = f"http://{world.host()}"
    uri = f"ws://{world.host()}/sessions/{world.session_id}/api/kernels/k/channels"

    async def talk(from_origin: str) -> tuple[str | None, Any]:
        async with connect(
            uri,
            host="127.0.0.1",
            port=port,
            origin=from_origin,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"aifactory_s={cookie}; {PORTAL_COOKIE}=secret"},
            subprotocols=["v1.kernel.websocket.jupyter.org"],  # type: ignore[list-item]
        ) as ws:
            await ws.send("hallo")
            text = await asyncio.wait_for(ws.recv(), 5)
            await ws.send(b"\x00\x01")
            data = await asyncio.wait_for(ws.recv(), 5)
            assert data == b"\x00\x01"
            return ws.subprotocol, text

    assert asyncio.run(talk(origin)) == ("v1.kernel.websocket.jupyter.org", "hallo")
    upgrade = next(s for s in world.hostile.seen if "channels" in s["path"])
    headers = {k.lower(): v for k, v in upgrade["headers"].items()}
    assert headers["authorization"] == f"token {world.token}"
    assert "secret" not in json.dumps(headers)
    assert cookie not in json.dumps(headers)
    with pytest.raises(InvalidStatus):  # another site's page: refused before any upgrade
        asyncio.run(talk("http://evil.example"))


def test_a_change_comes_from_the_sessions_own_pages_only(world: World) -> None:
    """Another session's page (same site under a real domain) posts with the victim's cookie:
    refused before the server sees it; the session's own pages and API clients pass."""
    cookie = world.enter()
    path = f"/sessions/{world.session_id}/api/shutdown"
    base = {"Cookie": f"aifactory_s={cookie}", "Accept": "application/json"}
    before = len(world.hostile.seen)
    for forged in (
        {"Origin": f"http://{world.host(world.other_id)}"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        answer = httpx.post(
            world.server.url + path, headers={"Host": world.host(), **base, **forged}, timeout=10
        )
        assert answer.status_code == 403, forged
    assert len(world.hostile.seen) == before  # none reached it
    own = {"Origin": f"http://{world.host()}", "Sec-Fetch-Site": "same-origin"}
    for allowed in (own, {}):  # its own page; a client that is no page
        answer = httpx.post(
            world.server.url + path, headers={"Host": world.host(), **base, **allowed}, timeout=10
        )
        assert answer.status_code == 200, allowed
