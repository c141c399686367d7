"""The gateway's HTTP/1.1 client for engines (gateway.engine_client), against real servers on
Unix sockets: answers with a length, chunked and close-delimited; connections kept and reused;
a kept connection the engine closed is replaced unnoticed; a hostile engine's endless head,
line or body is cut short; every failure an EngineGone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from aifactory.gateway.engine_client import EngineClient, EngineGone

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request(reader: asyncio.StreamReader) -> bytes:
    """One request: its head, then its body by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


def serve(
    tmp_path: Path, handler: Handler, test: Callable[[EngineClient], Awaitable[None]]
) -> None:
    async def main() -> None:
        path = tmp_path / "engine.sock"
        server = await asyncio.start_unix_server(handler, path=str(path))
        client = EngineClient(os.open(path, os.O_PATH), timeout_s=5)
        try:
            await test(client)
        finally:
            client.close()
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.05)  # the handlers see their connections end

    asyncio.run(main())


def test_answers_with_a_length_come_whole_over_one_kept_connection(tmp_path: Path) -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while not reader.at_eof():
            try:
                body = await _request(reader)
            except asyncio.IncompleteReadError:
                break
            answer = b'{"echo": ' + body + b"}"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def test(client: EngineClient) -> None:
        for i in range(3):
            answer = await client.post("/v1/completions", b'{"n": %d}' % i)
            assert (answer.status, answer.body) == (200, b'{"echo": {"n": %d}}' % i)

    serve(tmp_path, handler, test)
    assert len(connections) == 1


def test_a_chunked_stream_comes_line_by_line(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'data: {"a": 1}\n\nda', b'ta: {"b": 2}\n\n', b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the client lets go of the connection
        writer.close()

    async def test(client: EngineClient) -> None:
        stream = await client.open_stream("/v1/chat/completions", b"{}")
        assert stream.status == 200
        lines = [line async for line in stream.lines() if line]
        assert lines == ['data: {"a": 1}', 'data: {"b": 2}', "data: [DONE]"]

    serve(tmp_path, handler, test)


def test_a_stream_that_ends_with_its_connection_is_whole(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)  # the recipe's engine: no length, Connection: close
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        writer.write(b"data: 1\n\ndata: [DONE]\n\n")
        await writer.drain()
        writer.close()

    async def test(client: EngineClient) -> None:
        stream = await client.open_stream("/v1/completions", b"{}")
        assert await stream.read() == b"data: 1\n\ndata: [DONE]\n\n"

    serve(tmp_path, handler, test)


def test_a_kept_connection_the_engine_closed_is_replaced_unnoticed(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)  # one answer, kept alive by its headers, then closed as idle
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async def test(client: EngineClient) -> None:
        assert (await client.post("/x", b"{}")).body == b"ok"
        await asyncio.sleep(0.2)  # the engine has closed it by now
        assert (await client.post("/x", b"{}")).body == b"ok"

    serve(tmp_path, handler, test)


def test_an_answer_cut_short_is_an_engine_gone(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async def test(client: EngineClient) -> None:
        with pytest.raises(EngineGone, match="mid-answer"):
            await client.post("/x", b"{}")

    serve(tmp_path, handler, test)


def test_no_engine_listening_is_an_engine_gone(tmp_path: Path) -> None:
    async def test() -> None:
        (tmp_path / "nobody").touch()
        client = EngineClient(os.open(tmp_path / "nobody", os.O_PATH), timeout_s=1)
        with pytest.raises(EngineGone, match="cannot reach"):
            await client.post("/x", b"{}")
        client.close()

    asyncio.run(test())


def test_a_retired_client_makes_no_new_connection(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def test(client: EngineClient) -> None:
        client.retire()
        with pytest.raises(EngineGone, match="stopped answering"):
            await client.post("/x", b"{}")

    serve(tmp_path, handler, test)


def _flood(head: bytes, endless: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(head)
        try:
            for _ in range(2000):  # up to 128 MiB, unless the client lets go first
                writer.write(endless * 1024)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    return handler


@pytest.mark.parametrize(
    ("head", "endless", "stream", "said"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Junk: ", b"x" * 64, False, "too long a head"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", b"y" * 64, False, "too large"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata: ", b"z" * 64, True, "too long"),
    ],
)
def test_a_hostile_engines_endless_answer_is_cut_short(
    tmp_path: Path, head: bytes, endless: bytes, stream: bool, said: str
) -> None:
    async def test(client: EngineClient) -> None:
        with pytest.raises(EngineGone, match=said):
            if stream:
                opened = await client.open_stream("/x", b"{}")
                async for _ in opened.lines():
                    pass
            else:
                await client.post("/x", b"{}")

    serve(tmp_path, _flood(head, endless), test)
