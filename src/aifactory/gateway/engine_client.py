"""HTTP/1.1 to one replica's engine over its Unix socket: the gateway's hop, kept lean.

The hop is on every request's path, so it is measured (benchmarks/gateway_overhead.py): httpx
spent ~0.7 ms of client machinery per request here, more than the gateway's own work. This
client writes the request itself (a POST of JSON bytes the gateway already has), parses the
answer with httptools (llhttp, the C parser uvicorn uses), and keeps connections alive: its
only idea is one engine's connections. What it handles of HTTP/1.1 is what engines answer:
Content-Length, chunked (uvicorn: vLLM) and close-delimited bodies (the recipe's streams).

An engine is the project's own code, so nothing it answers is trusted: an answer's head is at
most `MAX_HEAD` bytes, a whole answer's body `MAX_BODY`, one line of a stream `MAX_LINE`, and a
whole answer must come within the client's timeout; anything else is an `EngineGone` (an
OSError), which the gateway treats as the replica not answering.

The client owns its descriptor of the replica's socket (executors.job_socket.open_job_socket) and
connects through `/proc/self/fd/N`: once `retire`d it makes no new connection, and the
descriptor is closed only with the client (`close`), so its number is never reused under it.
A kept connection may have been closed by the engine meanwhile (it closes idle ones): a
request on it that sees the connection end before any byte of an answer is sent once more on
another; kept connections idle longer than `IDLE_S` are closed, not reused.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools

READ_BYTES = 65536
IDLE_KEPT = 16  # idle connections kept per engine
IDLE_S = 4.0  # the recipe's engine closes idle connections after 5 s
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
MAX_LINE = 1024 * 1024


class EngineGone(ConnectionError):
    """The engine closed, refused, broke or overran the exchange."""


@dataclass(slots=True)
class _Message:
    """What httptools has parsed of one answer (its callbacks fill it in)."""

    length: int | None = None
    chunked: bool = False
    closes: bool = False  # Connection: close
    headers_done: bool = False
    done: bool = False
    body: list[bytes] = field(default_factory=list)
    body_bytes: int = 0  # read and not yet taken

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"content-length" and value.strip().isdigit():
            self.length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True
        elif key == b"connection" and b"close" in value.lower():
            self.closes = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        self.done = True

    def take(self) -> list[bytes]:
        taken, self.body, self.body_bytes = self.body, [], 0
        return taken

    @property
    def ends_at_close(self) -> bool:
        return self.length is None and not self.chunked


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class _Exchange:
    """One request and its answer on one connection."""

    def __init__(self, connection: _Connection, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.message = _Message()
        self.parser = httptools.HttpResponseParser(self.message)
        self.received = 0  # bytes of the answer read
        self.closed_early = False  # the connection ended before any byte of an answer

    async def more(self) -> None:
        """Read and parse what comes next (EOF ends a close-delimited body)."""
        left = self.deadline - time.monotonic()
        try:
            data = await asyncio.wait_for(self.connection.reader.read(READ_BYTES), max(left, 0))
        except (OSError, TimeoutError) as error:
            raise self.gone(f"the engine did not answer in time: {error!r}") from error
        if not data:
            if self.message.headers_done and self.message.ends_at_close:
                self.message.done = True  # a body that ends when the connection does
                return
            self.closed_early = self.received == 0
            raise self.gone("the engine closed the connection mid-answer")
        self.received += len(data)
        if not self.message.headers_done and self.received > MAX_HEAD:
            raise self.gone("the engine's answer has too long a head")
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            raise self.gone(f"the engine's answer is not HTTP/1.1: {error!r}") from error
        if self.message.headers_done and self.parser.get_status_code() < 200:
            raise self.gone("the engine answered 1xx")  # no request here asks for one

    def gone(self, why: str) -> EngineGone:
        self.connection.close()
        return EngineGone(why)


class EngineStream:
    """An answer whose body is read as it comes: `status` first, then `lines()` or `read()`."""

    def __init__(self, client: EngineClient, exchange: _Exchange) -> None:
        self._client = client
        self._exchange = exchange
        self.status = exchange.parser.get_status_code()

    async def chunks(self) -> AsyncIterator[bytes]:
        message = self._exchange.message
        while True:
            for chunk in message.take():
                yield chunk
            if message.done:
                self._client.done_with(self._exchange)
                return
            await self._exchange.more()

    async def lines(self) -> AsyncIterator[str]:
        """The body's lines, without their ends (server-sent events), each at most MAX_LINE."""
        pending = bytearray()
        async for chunk in self.chunks():
            start = len(pending)
            pending += chunk
            end = pending.find(b"\n", start)
            while end >= 0:
                yield pending[:end].rstrip(b"\r").decode(errors="replace")
                del pending[: end + 1]
                end = pending.find(b"\n")
            if len(pending) > MAX_LINE:
                raise self._exchange.gone("a line of the engine's stream is too long")
        if pending:
            yield pending.decode(errors="replace")

    async def read(self) -> bytes:
        """The whole body, at most MAX_BODY."""
        taken: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > MAX_BODY:
                raise self._exchange.gone("the engine's answer is too large")
            taken.append(chunk)
        return b"".join(taken)

    async def aclose(self) -> None:
        if not self._exchange.message.done:
            self._exchange.connection.close()  # a half-read answer: the connection goes


class EngineClient:
    """One engine's connections, through the descriptor `fd` it owns."""

    def __init__(self, fd: int, *, timeout_s: float) -> None:
        self.fd = fd
        self.timeout_s = timeout_s
        self.retired = False
        self.last_used = time.monotonic()
        self._idle: list[_Connection] = []  # oldest first
        self._closed = False

    async def post(self, target: str, body: bytes) -> Answer:
        stream = await self.open_stream(target, body)
        return Answer(stream.status, await stream.read())

    async def open_stream(self, target: str, body: bytes) -> EngineStream:
        return EngineStream(self, await self._send(target, body))

    def done_with(self, exchange: _Exchange) -> None:
        """A whole answer was read: keep its connection for the next request if it may be."""
        message = exchange.message
        http_11 = exchange.parser.get_http_version() == "1.1"
        keep = http_11 and not message.closes and not message.ends_at_close
        if keep and not self.retired and len(self._idle) < IDLE_KEPT:
            exchange.connection.idle_since = time.monotonic()
            self._idle.append(exchange.connection)
        else:
            exchange.connection.close()

    def retire(self) -> None:
        """No new connection from now on (the replica stopped answering)."""
        self.retired = True

    def close(self) -> None:
        """Its idle connections and its descriptor close; those carrying a request close when
        it is done (their sockets are their own)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if not self._closed:
            self._closed = True
            os.close(self.fd)

    async def _send(self, target: str, body: bytes) -> _Exchange:
        """The request sent and its answer's head read (once more on another connection if a
        kept one turns out closed before any answer)."""
        request = _request(target, body)
        deadline = time.monotonic() + self.timeout_s
        self.last_used = time.monotonic()
        while True:
            connection = self._kept() or await self._connect()
            reused = connection.idle_since > 0
            exchange = _Exchange(connection, deadline)
            try:
                connection.writer.write(request)
                await connection.writer.drain()
                while not exchange.message.headers_done:
                    await exchange.more()
            except OSError as error:  # EngineGone too
                connection.close()
                if reused and (exchange.closed_early or not isinstance(error, EngineGone)):
                    continue  # the engine had closed it: another kept one, or a new one
                raise
            return exchange

    def _kept(self) -> _Connection | None:
        """The newest idle connection that is young enough; the older ones close."""
        now = time.monotonic()
        while self._idle and now - self._idle[0].idle_since > IDLE_S:
            self._idle.pop(0).close()
        return self._idle.pop() if self._idle else None

    async def _connect(self) -> _Connection:
        if self.retired or self._closed:
            raise EngineGone("the replica stopped answering")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(f"/proc/self/fd/{self.fd}", limit=READ_BYTES),
                self.timeout_s,
            )
        except (OSError, TimeoutError) as error:
            raise EngineGone(f"cannot reach the engine: {error!r}") from error
        return _Connection(reader, writer)


def _request(target: str, body: bytes) -> bytes:
    head = (
        f"POST {target} HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nAccept: */*\r\n\r\n"
    )
    return head.encode("ascii") + body
