"""The gateway connects, as root, only to the replica's own socket: never through a name the
job swapped for a link to another socket (another project's engine, a system service's)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.gateway.routes import engine_socket


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    """A socket elsewhere that a job should never reach through the facility."""
    other = tmp_path / "other" / "service.sock"
    other.parent.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(other))
    server.listen()
    yield other
    server.close()


def test_the_replicas_own_socket_is_reached(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(work / "engine.sock"))
    server.listen()
    try:
        with engine_socket(work / "engine.sock") as reached:
            client = socket.socket(socket.AF_UNIX)
            client.connect(reached)
            accepted, _ = server.accept()
            client.sendall(b"ping")
            assert accepted.recv(4) == b"ping"
            client.close()
            accepted.close()
    finally:
        server.close()


def test_a_link_in_its_place_is_refused(tmp_path: Path, listening: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "engine.sock").symlink_to(listening)
    with (
        pytest.raises(OSError, match="not the job's own socket"),
        engine_socket(work / "engine.sock"),
    ):
        pass


def test_a_socket_of_another_owner_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("needs root to give the socket another owner")
    work = tmp_path / "work"
    work.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(work / "engine.sock"))
    try:
        os.chown(work / "engine.sock", 12345, 12345, follow_symlinks=False)
        with (
            pytest.raises(OSError, match="not the job's own socket"),
            engine_socket(work / "engine.sock"),
        ):
            pass
    finally:
        server.close()
