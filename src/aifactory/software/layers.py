"""Unpacking one image layer over a rootfs, safely: a layer is an untrusted tar.

`unpack_layer` reads the layer as stored (gzip or plain tar), hashes it on the way (as stored
and uncompressed: the manifest names the one, the config's diff_ids the other) and writes its
entries below the rootfs's directory descriptor:
- no absolute or `..` names; no entry goes through a symlink (each directory on the way is
  opened with O_NOFOLLOW from the one above it), so nothing lands outside the rootfs;
- whiteouts: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory of what lower
  layers put there (this layer's own entries stay);
- device nodes and fifos are left out; setuid/setgid bits and others' write bits are dropped;
  directories are 0755 and files world-readable (an image is shared software, not a secret);
  everything belongs to whoever unpacks (root, for the control plane), whatever the tar says.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(ValueError):
    """The layer cannot be unpacked safely (the message names it by `what`)."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Unpacked:
    stored_digest: str  # sha256:<hex> of the blob as stored
    diff_id: str  # …and of the uncompressed tar
    size_bytes: int  # of the files it wrote


def unpack_layer(blob: _Readable, root_fd: int, what: str) -> Unpacked:
    """Unpack the layer `blob` over the directory `root_fd`; `what` names it in errors."""
    stored = _Digesting(blob)
    plain = _Digesting(_decompressed(stored, what))
    size = _Unpacker(root_fd, what).run(plain)
    _drain(plain)  # the tar's end padding, and the gzip trailer: both digests cover all
    _drain(stored)
    return Unpacked(stored.digest(), plain.digest(), size)


class _Digesting(io.RawIOBase):
    """A reader that hashes what passes through it."""

    def __init__(self, raw: _Readable) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.sha.update(data)
        buffer[: len(data)] = data
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _decompressed(stored: _Digesting, what: str) -> _Readable:
    reader = io.BufferedReader(stored)
    magic = reader.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=reader, mode="rb")
    if magic == b"\x28\xb5\x2f\xfd":
        raise LayerError(
            f"layer {what} is zstd-compressed, which this facility cannot unpack: "
            "export the image with gzip layers (skopeo copy --dest-compress-format gzip)"
        )
    return reader


def _drain(reader: io.RawIOBase) -> None:
    while reader.read(1 << 20):
        pass


class _Unpacker:
    """Writes one layer's entries below the rootfs's directory fd, never through a link."""

    def __init__(self, root_fd: int, what: str) -> None:
        self.root_fd = root_fd
        self.what = what
        self.written: set[tuple[str, ...]] = set()  # this layer's own entries
        self.size = 0

    def run(self, plain: io.RawIOBase) -> int:
        try:
            with tarfile.open(fileobj=io.BufferedReader(plain), mode="r|") as layer:
                for entry in layer:
                    self._entry(layer, entry)
        except tarfile.TarError as exc:
            raise LayerError(f"layer {self.what} is not a valid tar: {exc}") from None
        return self.size

    def _entry(self, layer: tarfile.TarFile, entry: tarfile.TarInfo) -> None:
        parts = self._parts(entry.name)
        if not parts:
            return  # the root itself
        base = parts[-1]
        with self._parent(parts) as parent:
            if base == OPAQUE:
                self._opaque(parent, parts[:-1])
            elif base.startswith(WHITEOUT):
                hidden = base[len(WHITEOUT) :]
                if hidden in ("", ".", "..") or "/" in hidden:
                    raise LayerError(f"a whiteout of no file: {entry.name!r}")
                _remove(parent, hidden)
            else:
                self._write(layer, entry, parent, base)
                self.written.add(parts)

    def _parts(self, name: str) -> tuple[str, ...]:
        if name.startswith("/"):
            raise LayerError(f"layer {self.what}: absolute path {name!r}")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise LayerError(f"layer {self.what}: path {name!r} leaves the image")
        return parts

    @contextlib.contextmanager
    def _parent(self, parts: tuple[str, ...]) -> Iterator[int]:
        """The directory that holds `parts`, made where missing; every step O_NOFOLLOW."""
        fd = os.dup(self.root_fd)
        try:
            for depth, part in enumerate(parts[:-1]):
                inner = self._step(fd, part, parts[: depth + 1])
                os.close(fd)
                fd = inner
            yield fd
        finally:
            os.close(fd)

    def _step(self, fd: int, part: str, path: tuple[str, ...]) -> int:
        """The directory `part` in `fd`, opened (made first if missing)."""
        made = _mkdir(fd, part)
        try:
            inner = _open_dir(fd, part)
        except OSError:
            raise LayerError(
                f"layer {self.what}: {'/'.join(path)} is a link or not a directory, and an "
                "entry goes through it"
            ) from None
        if made:
            os.fchmod(inner, 0o755)
        return inner

    def _opaque(self, parent: int, directory: tuple[str, ...]) -> None:
        """Hide what lower layers put in the directory; keep what this layer wrote there."""
        for name in os.listdir(parent):
            path = (*directory, name)
            if path not in self.written:
                _remove(parent, name)
            elif _is_dir(parent, name):
                inner = _open_dir(parent, name)
                try:
                    self._opaque(inner, path)
                finally:
                    os.close(inner)

    def _write(
        self, layer: tarfile.TarFile, entry: tarfile.TarInfo, parent: int, name: str
    ) -> None:
        if entry.isdir():
            if not _is_dir(parent, name):
                _remove(parent, name)
                _mkdir(parent, name)
            inner = _open_dir(parent, name)
            os.fchmod(inner, 0o755)
            os.close(inner)
        elif entry.issym():
            _remove(parent, name)
            os.symlink(entry.linkname, name, dir_fd=parent)
        elif entry.islnk():
            self._link(entry, parent, name)
        elif entry.isfile():
            _remove(parent, name)
            self.size += _copy(layer, entry, parent, name)
        # devices and fifos are left out: a job gets its devices from the facility

    def _link(self, entry: tarfile.TarInfo, parent: int, name: str) -> None:
        target = self._parts(entry.linkname)
        if not target:
            return
        with self._parent(target) as source_dir:
            if not _is_file(source_dir, target[-1]):
                return  # a link to something left out (a device)
            _remove(parent, name)
            os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent,
                    follow_symlinks=False)  # fmt: skip


def _copy(layer: tarfile.TarFile, entry: tarfile.TarInfo, parent: int, name: str) -> int:
    mode = (entry.mode & 0o755) | 0o444  # no setuid/setgid, no write for others, readable
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=parent)
    with os.fdopen(fd, "wb") as out:
        source = layer.extractfile(entry)
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)
        os.fchmod(out.fileno(), mode)
    return entry.size


def _mkdir(parent: int, name: str) -> bool:
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        return False
    return True


def _open_dir(parent: int, name: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, dir_fd=parent)


def _is_dir(parent: int, name: str) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    return False


def _is_file(parent: int, name: str) -> bool:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        return stat.S_ISREG(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    return False


def _remove(parent: int, name: str) -> None:
    """Whatever `name` is (a directory tree too); nothing if it is not there."""
    if _is_dir(parent, name):
        shutil.rmtree(name, dir_fd=parent)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)
