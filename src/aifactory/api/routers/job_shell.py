"""`/api/v1/jobs/{id}/exec`: a command in a running job's sandbox, over a WebSocket.

The client sends an API token (`Authorization: Bearer`), then one JSON text message:
`{"command": [...], "tty": bool, "rows": int, "cols": int}`. Then binary messages both ways
are the command's input and output (stdout and stderr as one stream; a terminal's with tty),
a text message `{"resize": [rows, cols]}` resizes the terminal, `{"eof": true}` ends the input.
The server ends with `{"exit": code}` and closes; a refusal is `{"error": message, "status":
HTTP status, "field": name}` and a close with 4000 + the status. What each call ran is in the
audit log (services.job_shell).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from aifactory.api.errors import STATUS
from aifactory.errors import AifactoryError, Conflict, InvalidInput
from aifactory.faces.state import AppState
from aifactory.services.auth import authenticate
from aifactory.services.job_shell import Shell, shell_target, start_in_job

READ_BYTES = 65536
QUEUED = 64
WRITE_S = 10.0  # a command that takes none of its waiting input this long: the end
MAX_SHELLS_PER_USER = 8  # per API process
_open_shells: Counter[int] = Counter()  # user id → commands they have running through here
FIRST_MESSAGE_S = 30.0


def install(app: FastAPI, prefix: str) -> None:
    app.add_api_websocket_route(f"{prefix}/jobs/{{job_id}}/exec", job_exec)


async def job_exec(websocket: WebSocket, job_id: int) -> None:
    state: AppState = websocket.app.state.aifactory
    await websocket.accept()
    try:
        shell, user_id = await _open(websocket, state, job_id)
    except AifactoryError as refused:
        await _refuse(websocket, refused)
        return
    except (WebSocketDisconnect, TimeoutError):
        return
    try:
        await _pump(websocket, shell)
    finally:
        _open_shells[user_id] -= 1
        await run_in_threadpool(shell.close)
    if websocket.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.send_text(json.dumps({"exit": shell.proc.returncode}))
            await websocket.close()


async def _open(websocket: WebSocket, state: AppState, job_id: int) -> tuple[Shell, int]:
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    asked = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_S)
    try:
        request = json.loads(asked)
    except ValueError:
        raise InvalidInput("the first message must be JSON", field="command") from None
    command, tty = request.get("command"), request.get("tty", False)
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise InvalidInput("must be a list of strings", field="command")
    if not isinstance(tty, bool):
        raise InvalidInput("must be true or false", field="tty")
    rows, cols = _size(request.get("rows", 24), "rows"), _size(request.get("cols", 80), "cols")
    source = websocket.client.host if websocket.client else None

    def check() -> tuple[int, int]:
        with state.db.session() as session:
            principal = authenticate(session, token if scheme.lower() == "bearer" else None, now)
            principal = replace(principal, source=source)
            attempt = shell_target(session, principal, job_id, command, tty=tty, now=now)
            return attempt, principal.user_id

    now = state.clock()
    attempt, user_id = await run_in_threadpool(check)
    if state.open_shell is None:
        raise Conflict("this facility's executor cannot run a command in a job (Slurm: not yet)")
    if _open_shells[user_id] >= MAX_SHELLS_PER_USER:
        raise Conflict(
            f"you have {MAX_SHELLS_PER_USER} commands running in jobs: end one first",
            field="command",
        )
    shell = await run_in_threadpool(
        start_in_job, state.open_shell, job_id, attempt, command, tty=tty, rows=rows, cols=cols
    )
    _open_shells[user_id] += 1
    return shell, user_id


def _size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise InvalidInput("must be a whole number from 1 to 1000", field=field)
    return value


async def _pump(websocket: WebSocket, shell: Shell) -> None:
    """Output to the client until the command's output ends; input and resizes to it. Output
    is read only as fast as the client takes it (at most `QUEUED` reads waiting)."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    paused = [False]

    def readable() -> None:
        try:
            data = os.read(shell.output, READ_BYTES)
        except BlockingIOError:
            return
        except OSError:  # a terminal whose processes are gone: EIO
            data = b""
        chunks.put_nowait(data)
        if not data or chunks.qsize() >= QUEUED:
            loop.remove_reader(shell.output)
            paused[0] = bool(data)

    for fd in {shell.output, shell.stdin} - {-1}:
        os.set_blocking(fd, False)  # the event loop reads and writes them: never a thread
    loop.add_reader(shell.output, readable)

    async def down() -> None:
        while True:
            data = await chunks.get()
            if not data:
                return
            await websocket.send_bytes(data)
            if paused[0] and chunks.qsize() < QUEUED // 2:
                paused[0] = False
                loop.add_reader(shell.output, readable)

    async def up() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                if shell.stdin >= 0:
                    await _write(loop, shell.stdin, message["bytes"])
            elif message.get("text") is not None:
                _control(shell, message["text"])

    sending = asyncio.create_task(down())
    receiving = asyncio.create_task(up())
    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(shell.output)
        for task in (sending, receiving):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(sending, receiving)


async def _write(loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
    """All of `data` to the command's input, as fast as it reads it: meanwhile no more input
    is taken from the client (its sends wait); a command that takes none of it for
    `WRITE_S` ends the exchange (TimeoutError): a client gone meanwhile is noticed then."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            writable = loop.create_future()
            loop.add_writer(fd, writable.set_result, None)
            try:
                await asyncio.wait_for(writable, WRITE_S)
            finally:
                loop.remove_writer(fd)


def _control(shell: Shell, text: str) -> None:
    with contextlib.suppress(ValueError, TypeError, OSError):
        message = json.loads(text)
        if isinstance(message, dict) and "resize" in message:
            rows, cols = message["resize"]
            shell.resize(int(rows), int(cols))
        elif isinstance(message, dict) and message.get("eof"):
            shell.close_input()


async def _refuse(websocket: WebSocket, refused: AifactoryError) -> None:
    status = next((s for kind, s in STATUS.items() if isinstance(refused, kind)), 400)
    body = {"error": refused.message, "status": status, "field": refused.field}
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(body))
        await websocket.close(code=4000 + status)
