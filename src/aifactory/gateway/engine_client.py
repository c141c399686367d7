"""HTTP/1.1 to one replica's engine over its Unix socket: the gateway's hop, kept lean.

The hop is on every request's path, so it is measured (benchmarks/gateway_overhead.py): httpx
spent ~0.7 ms of client machinery per request here, more than the gateway's own work. This
client writes the request itself (a POST of JSON bytes the gateway already has), parses the
answer with httptools (llhttp, the C parser uvicorn uses), and keeps connections alive: its
only idea is one engine's connections. What it handles of HTTP/1.1 is what engines answer:
Content-Length, chunked (uvicorn: vLLM) and close-delimited bodies (the recipe's streams).

A connection kept alive may have been closed by the engine meanwhile (it closes idle ones): a
request on it that sees the connection end before any byte of an answer is sent once more on a
new connection, as HTTP clients do. Every failure is an `EngineGone` (an OSError), which the
gateway treats as the replica not answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools

READ_BYTES = 65536
IDLE_KEPT = 64  # idle connections kept per engine


class EngineGone(ConnectionError):
    """The engine closed, refused or broke the exchange."""


@dataclass(slots=True)
class _Message:
    """What httptools has parsed of one answer (its callbacks fill it in)."""

    length: int | None = None
    chunked: bool = False
    closes: bool = False  # Connection: close
    headers_done: bool = False
    done: bool = False
    body: list[bytes] = field(default_factory=list)

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"content-length":
            self.length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True
        elif key == b"connection" and b"close" in value.lower():
            self.closes = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    @property
    def ends_at_close(self) -> bool:
        return self.length is None and not self.chunked


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class EngineStream:
    """An answer whose body is read as it comes: `status` first, then `lines()` or `read()`."""

    def __init__(self, client: EngineClient, exchange: _Exchange, timeout_s: float) -> None:
        self._client = client
        self._exchange = exchange
        self._timeout_s = timeout_s
        self.status = exchange.parser.get_status_code()

    async def chunks(self) -> AsyncIterator[bytes]:
        message = self._exchange.message
        while True:
            while message.body:
                yield message.body.pop(0)
            if message.done:
                self._client.done_with(self._exchange)
                return
            await self._exchange.more(self._timeout_s)

    async def lines(self) -> AsyncIterator[str]:
        """The body's lines, without their ends (server-sent events)."""
        pending = b""
        async for chunk in self.chunks():
            pending += chunk
            *whole, pending = pending.split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r").decode()
        if pending:
            yield pending.decode()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        if not self._exchange.message.done:
            self._exchange.connection.close()  # a half-read answer: the connection goes


class _Exchange:
    """One request and its answer on one connection."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.message = _Message()
        self.parser = httptools.HttpResponseParser(self.message)
        self.received = False

    async def more(self, timeout_s: float) -> None:
        try:
            data = await asyncio.wait_for(self.connection.reader.read(READ_BYTES), timeout_s)
        except (OSError, TimeoutError) as error:
            self.connection.close()
            raise EngineGone(f"the engine did not answer: {error!r}") from error
        if not data:
            if self.message.headers_done and self.message.ends_at_close:
                self.message.done = True  # a body that ends when the connection does
                return
            self.connection.close()
            raise EngineGone("the engine closed the connection mid-answer")
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.connection.close()
            raise EngineGone(f"the engine's answer is not HTTP: {error}") from error


class EngineClient:
    """One engine's connections: `path` is what to connect to (the gateway's descriptor path)."""

    def __init__(self, path: str, *, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []

    async def post(self, target: str, body: bytes) -> Answer:
        exchange = await self._send(target, body)
        while not exchange.message.done:
            await exchange.more(self.timeout_s)
        self.done_with(exchange)
        return Answer(exchange.parser.get_status_code(), b"".join(exchange.message.body))

    async def open_stream(self, target: str, body: bytes) -> EngineStream:
        return EngineStream(self, await self._send(target, body), self.timeout_s)

    def done_with(self, exchange: _Exchange) -> None:
        """A whole answer was read: keep its connection for the next request if it may be."""
        message = exchange.message
        http_11 = exchange.parser.get_http_version() == "1.1"
        keep = http_11 and not message.closes and not message.ends_at_close
        if keep and len(self._idle) < IDLE_KEPT:
            self._idle.append(exchange.connection)
        else:
            exchange.connection.close()

    def close(self) -> None:
        """Its idle connections close; those carrying a request close when it is done."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _send(self, target: str, body: bytes) -> _Exchange:
        """The request sent and its answer's head read (once more on a new connection if a
        kept one turns out closed before any answer)."""
        request = _request(target, body)
        while True:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._connect()
            exchange = _Exchange(connection)
            try:
                connection.writer.write(request)
                await connection.writer.drain()
                while not exchange.message.headers_done:
                    await exchange.more(self.timeout_s)
            except OSError:  # EngineGone too
                connection.close()
                if reused and not exchange.received:
                    continue  # the engine had closed it: the next kept one, or a new one
                raise
            return exchange

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path, limit=READ_BYTES), self.timeout_s
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
