"""A job's own server, as the facility (root) reaches it: an engine's, a notebook's. On this
host it is a Unix socket in the job's directory; on a Slurm node, the same socket relayed to a
TCP port of the node behind mutual TLS (executors.slurm.relay): a `Relayed`.

The socket lies in the job's directory, which the job controls: it could put a link there, or
swap the socket, to point the facility at another socket (another tenant's, the facility's
own). So it is opened without following a link from its directory, must be a socket of the
directory's owner (the job's identity), and is then reached through `/proc/self/fd/N`: that
inode, even if the name is swapped later.
"""

from __future__ import annotations

import os
import socket as sockets
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aifactory.domain.jobfiles import work_dir


@dataclass(frozen=True, slots=True)
class Relayed:
    """A job's socket reached over the network: trust exactly the relay `context` names."""

    host: str
    port: int
    context: ssl.SSLContext


JobServer = Path | Relayed
# Where an attempt's server of a given socket name is reached (an executor's `served`); None:
# not yet (the job has not started it, or its relay has not said its port).
ServerFinder = Callable[[int, int, str], JobServer | None]


def sockets_in(jobs_dir: Path) -> ServerFinder:
    """Jobs' sockets on this host: in each job's own directory under `jobs_dir`."""
    return lambda job_id, _attempt, socket: work_dir(jobs_dir / str(job_id)) / socket


def open_job_socket(socket: Path) -> int:
    """A descriptor of exactly the job's own socket: opened without following a link from
    its directory (the facility's path up to the job's directory, the job's own below), and it
    must be a socket of the directory's owner, the job's identity. Connecting through
    `/proc/self/fd/N` then reaches that inode, even if the name is swapped later: a job never
    points the facility, which connects as root, at another socket."""
    directory = os.open(socket.parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fd = os.open(socket.name, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
        owner = os.fstat(directory).st_uid
    finally:
        os.close(directory)
    found = os.fstat(fd)
    if not stat.S_ISSOCK(found.st_mode) or found.st_uid != owner:
        os.close(fd)
        raise OSError(f"{socket} is not the job's own socket")
    return fd


def connect(server: JobServer, timeout_s: float) -> sockets.socket:
    """A connected stream to the job's server, TLS done when it is relayed."""
    if isinstance(server, Relayed):
        raw = sockets.create_connection((server.host, server.port), timeout=timeout_s)
        try:
            return server.context.wrap_socket(raw, server_hostname=server.host)
        except BaseException:
            raw.close()
            raise
    fd = open_job_socket(server)
    try:
        conn = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        conn.settimeout(timeout_s)
        try:
            conn.connect(f"/proc/self/fd/{fd}")
        except BaseException:
            conn.close()
            raise
        return conn
    finally:
        os.close(fd)
