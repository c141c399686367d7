"""Where dataset versions lie on disk: the data root's rules, with real filesystem I/O.

A *version path* is a file or a directory strictly inside the facility's data root. It is
given relative to the root (or absolute, if inside it) and stored resolved (os.path.realpath).

Invariants this module keeps for every version it stores:
- it lies inside the data root once every symbolic link is resolved, and no symbolic link in
  it (the path itself, or any file or directory below) leads outside the version;
- it holds data: it exists, has at least one regular file, and not zero bytes in all;
- it holds nothing but regular files, directories and such links (no device, socket or pipe);
- it neither equals, lies inside, nor contains the path of another version still on disk
  (versions are immutable and share no files);
- it is read-only (no write bit on its files and directories), so jobs cannot change it, and
  its SHA-256 is taken after that: a file's digest is of its bytes; a directory's is over its
  entries in sorted order, each a relative path with its file's digest or link's target.

Every refusal is an InvalidInput naming the field `path`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aifactory.errors import Conflict, InvalidInput

CHUNK = 1 << 20  # bytes read at a time while hashing
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
FILE, DIR, LINK = "file", "dir", "link"


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One thing inside a version: its path relative to the version ('' for a one-file
    version), its kind, its size (files) and its target relative to the version (links)."""

    relpath: str
    kind: str
    size: int = 0
    target: str = ""


@dataclass(frozen=True, slots=True)
class Stored:
    """A version as it lies on disk once stored: resolved path, size, files and digest."""

    path: Path
    size_bytes: int
    files: int
    sha256: str


def store(root: Path, path: Path) -> Stored:
    """Make the version at `path` (from `resolve`) read-only and measure it. Its contents are
    checked before anything changes, and again after: a change in between is refused."""
    before = survey(root, path)
    freeze(path, before)
    if survey(root, path) != before:
        raise Conflict("the data changed while it was being registered; try again", field="path")
    return Stored(path, sum(e.size for e in before), _count_files(before), digest(path, before))


def resolve(root: Path, given: str) -> Path:
    """The real path `given` names: relative to the root, or absolute inside it."""
    real_root = Path(os.path.realpath(root))
    if not given.strip() or "\x00" in given:
        raise InvalidInput("give the path of the data, inside the data root", field="path")
    found = Path(os.path.realpath(real_root / given))  # an absolute `given` replaces the root
    if found == real_root:
        raise InvalidInput(
            "a version lies in its own file or directory inside the data root, not the root",
            field="path",
        )
    if not found.is_relative_to(real_root):
        raise InvalidInput(f"{given!r} is outside the data root", field="path")
    if not os.path.lexists(found):
        raise InvalidInput(f"{given!r} does not exist in the data root", field="path")
    return found


def check_apart(path: Path, others: Iterable[str]) -> None:
    """Refuse a path equal to, inside, or containing another version's path."""
    for other in map(Path, others):
        if path == other or path.is_relative_to(other) or other.is_relative_to(path):
            raise InvalidInput(
                f"{path} overlaps {other}, the data of another version; "
                "each version lies in files of its own",
                field="path",
            )


def survey(root: Path, path: Path) -> tuple[Entry, ...]:
    """Everything in the version, in sorted order; refuses what a version may not hold."""
    real_root = Path(os.path.realpath(root))
    mode = _lstat(path).st_mode
    if stat.S_ISREG(mode):
        entries: tuple[Entry, ...] = (Entry("", FILE, _lstat(path).st_size),)
    elif stat.S_ISDIR(mode):
        entries = tuple(sorted(_walk(real_root, path)))
    else:
        raise InvalidInput(f"{path} is not a regular file or a directory", field="path")
    if _count_files(entries) == 0 or sum(e.size for e in entries) == 0:
        raise InvalidInput(f"{path} is empty: a version holds data", field="path")
    return entries


def _walk(root: Path, top: Path) -> Iterable[Entry]:
    def refuse(error: OSError) -> None:
        raise InvalidInput(f"cannot read {error.filename}: {error.strerror}", field="path")

    for dirpath, dirnames, filenames in os.walk(top, onerror=refuse):
        for name in dirnames + filenames:
            yield _entry(root, top, Path(dirpath) / name)


def _entry(root: Path, top: Path, path: Path) -> Entry:
    relpath = path.relative_to(top).as_posix()
    info = _lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return Entry(relpath, LINK, target=_link_target(root, top, path, relpath))
    if stat.S_ISDIR(info.st_mode):
        return Entry(relpath, DIR)
    if stat.S_ISREG(info.st_mode):
        return Entry(relpath, FILE, info.st_size)
    raise InvalidInput(
        f"{relpath} is not a regular file, directory or link (a device, socket or pipe?)",
        field="path",
    )


def _link_target(root: Path, top: Path, link: Path, relpath: str) -> str:
    """Where a link inside the version leads, relative to the version; it must stay inside it."""
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(root):
        raise InvalidInput(f"{relpath} is a link that leads outside the data root", field="path")
    if not target.is_relative_to(top):
        raise InvalidInput(
            f"{relpath} is a link to data outside this version; versions share no files",
            field="path",
        )
    return target.relative_to(top).as_posix()


def _lstat(path: Path) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="path") from None


def _count_files(entries: Iterable[Entry]) -> int:
    return sum(1 for e in entries if e.kind == FILE)


def freeze(path: Path, entries: Iterable[Entry]) -> None:
    """Take every write bit off the version's files and directories (links have none)."""
    for entry in entries:
        if entry.kind != LINK:
            _chmod(path / entry.relpath if entry.relpath else path, remove=WRITE_BITS)
    _chmod(path, remove=WRITE_BITS)


def thaw(path: Path) -> None:
    """Give the owner back the write bit on every directory of a version (to erase it)."""
    if path.is_dir() and not path.is_symlink():
        _chmod(path, add=stat.S_IWUSR)
        for dirpath, dirnames, _files in os.walk(path):
            for name in dirnames:
                if not (Path(dirpath) / name).is_symlink():
                    _chmod(Path(dirpath) / name, add=stat.S_IWUSR)


def _chmod(path: Path, *, remove: int = 0, add: int = 0) -> None:
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        os.chmod(path, (mode & ~remove) | add)
    except OSError as exc:
        raise Conflict(
            f"cannot change the permissions of {path}: {exc.strerror}; the facility must own "
            "the files it registers",
            field="path",
        ) from None


def digest(path: Path, entries: Iterable[Entry]) -> str:
    """A file's SHA-256; for a directory, the SHA-256 over its sorted entries, each its
    relative path and its file's digest (or link's target), NUL-separated."""
    listed = list(entries)
    if len(listed) == 1 and listed[0].relpath == "":
        return _file_digest(path)
    total = hashlib.sha256()
    for entry in listed:
        if entry.kind == FILE:
            value = _file_digest(path / entry.relpath)
        elif entry.kind == LINK:
            value = "->" + entry.target
        else:
            continue
        total.update(os.fsencode(entry.relpath) + b"\0" + os.fsencode(value) + b"\0")
    return total.hexdigest()


def _file_digest(path: Path) -> str:
    found = hashlib.sha256()
    try:
        with open(path, "rb") as data:
            while chunk := data.read(CHUNK):
                found.update(chunk)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="path") from None
    return found.hexdigest()
