"""A place where the job's identity can reach what its sandbox mounts, made by root.

bubblewrap runs as the job's identity and looks its mount sources up by path, as that
identity: it cannot walk into the facility's data directory (0700) nor into an interpreter
under /root. So the supervisor, while still root, moves into a mount namespace of its own
(nothing it mounts there is seen by anyone else, and it all goes when the supervisor ends),
mounts a small tmpfs at `STAGE` and bind-mounts each source, opened by descriptor, onto an
entry of it. bubblewrap then mounts the entries. A source is judged and mounted through the
same open descriptor, so a path swapped for a link after the check cannot redirect a mount.
"""

from __future__ import annotations

import ctypes
import os
import stat
from pathlib import Path

STAGE = Path("/run/aifactory-sandbox")
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV = 0x2, 0x4
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000


class Stage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    @classmethod
    def enter(cls, root: Path = STAGE) -> Stage:
        """Leave the host's mount namespace (this process only) and mount the stage."""
        _check(_libc().unshare(CLONE_NEWNS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host
        if root.is_symlink():
            raise OSError(f"{root} is a link")
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        _mount("tmpfs", str(root), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        return cls(root)

    def place(self, fd: int) -> str:
        """Bind the file or directory open as `fd` onto a new entry; its path."""
        self._count += 1
        entry = self.root / str(self._count)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            entry.mkdir()
        else:
            entry.touch()
        _mount(f"/proc/self/fd/{fd}", str(entry), None, MS_BIND | MS_REC)
        return str(entry)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    done = _libc().mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(done, f"mount {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
