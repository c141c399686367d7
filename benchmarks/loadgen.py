"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive, one process).

Each of `concurrency` workers keeps one connection and sends the next request as soon as the
last answer arrives; latency is measured per request from write to the end of the body.
Deliberately minimal so it costs the server as little CPU as possible on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


async def _worker(
    host: str,
    port: int,
    make_request: object,
    until: float,
    measure_from: float,
    result: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            now = time.perf_counter()
            if now >= until:
                return
            writer.write(make_request())  # type: ignore[operator]
            await writer.drain()
            status = await _read_response(reader)
            done = time.perf_counter()
            if now >= measure_from:
                result.latencies_s.append(done - now)
                result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


def post_json(url: str, path: str, token: str, body: dict[str, object]) -> bytes:
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def run_load(
    url: str, make_request: object, *, concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    parts = urlsplit(url)
    result = LoadResult(seconds=duration_s)

    async def main() -> None:
        start = time.perf_counter()
        measure_from = start + warmup_s
        until = measure_from + duration_s
        await asyncio.gather(
            *(
                _worker(
                    parts.hostname or "127.0.0.1",
                    parts.port or 80,
                    make_request,
                    until,
                    measure_from,
                    result,
                )
                for _ in range(concurrency)
            )
        )

    asyncio.run(main())
    return result
