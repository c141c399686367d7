"""A job's own Unix socket, as the facility (root) opens it: an engine's, a notebook's.

The socket lies in the job's directory, which the job controls: it could put a link there, or
swap the socket, to point the facility at another socket (another tenant's, the facility's
own). So it is opened without following a link from its directory, must be a socket of the
directory's owner (the job's identity), and is then reached through `/proc/self/fd/N`: that
inode, even if the name is swapped later.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


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
