"""Where dataset versions lie on disk: the data root's rules, with real filesystem I/O.

A version lies in an *area*: a facility dataset's anywhere in the facility's data root; a
project's in the project's own directory of the root, `<root>/<project>/`, which must be a
real directory there (not a link) and whose name is the project's, one path component. So one
project cannot register data put in the root for another. A *version path* is a file or a
directory strictly inside its area. It is given relative to the area (or absolute, if inside
it) and stored resolved (os.path.realpath).

Invariants this module keeps for every version it stores:
- it lies inside its area once every symbolic link is resolved, and no symbolic link in it
  (the path itself, or any file or directory below) leads outside the version;
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
READ_BITS = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
OPEN_BITS = READ_BITS | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # directories
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


def store(root: Path, path: Path, *, project: str | None = None) -> Stored:
    """Make the version at `path` (from `resolve`, with the same `project`) read-only and
    measure it. Its contents are checked before anything changes, and again after: a change in
    between is refused."""
    before = survey(root, path, project=project)
    freeze(path, before)
    if survey(root, path, project=project) != before:
        raise Conflict("the data changed while it was being registered; try again", field="path")
    return Stored(path, sum(e.size for e in before), _count_files(before), digest(path, before))


def area(root: Path, project: str | None) -> Path:
    """The real directory the versions of `project`'s datasets lie in: `<root>/<project>/`, a
    directory of the real data root itself (not a link to one, here or elsewhere); for a
    facility dataset (`project` None), the real data root."""
    real_root = Path(os.path.realpath(root))
    if project is None:
        return real_root
    if not _one_component(project):
        raise InvalidInput(
            f"project {project!r} has a name that cannot be a directory of the data root "
            "(a '/', NUL, '.' or '..'): its datasets cannot be registered",
            field="path",
        )
    found = real_root / project
    try:
        info = os.lstat(found)
    except FileNotFoundError:
        raise InvalidInput(
            f"project {project} has no area in the data root yet: create {found}/ and put the "
            f"data of its datasets there",
            field="path",
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {found}: {exc.strerror}", field="path") from None
    if not stat.S_ISDIR(info.st_mode):  # lstat: a link, even to a directory, is refused
        raise InvalidInput(
            f"{found} must be a directory of the data root itself (not a link or a file): "
            f"the data of project {project}'s datasets lies under {found}/",
            field="path",
        )
    return found


def resolve(root: Path, given: str, *, project: str | None = None) -> Path:
    """The real path `given` names: relative to the area (`area`), or absolute inside it."""
    base = area(root, project)
    where = _where(base, project)
    if not given.strip() or "\x00" in given:
        raise InvalidInput(f"give the path of the data, inside {where}", field="path")
    found = Path(os.path.realpath(base / given))  # an absolute `given` replaces the area
    if found == base:
        itself = "the root" if project is None else "the area itself"
        raise InvalidInput(
            f"a version lies in its own file or directory inside {where}, not {itself}",
            field="path",
        )
    if not found.is_relative_to(base):
        raise InvalidInput(_outside(given, base, project), field="path")
    if not os.path.lexists(found):
        raise InvalidInput(f"{given!r} does not exist in {where}", field="path")
    return found


def _one_component(name: str) -> bool:
    """Whether `name` names one directory entry: no separator, NUL, '.' or '..'."""
    separators = {"/", "\x00", os.sep} | ({os.altsep} if os.altsep else set())
    return name not in {"", ".", ".."} and not any(c in name for c in separators)


def _where(base: Path, project: str | None) -> str:
    return "the data root" if project is None else f"project {project}'s area {base}/"


def _outside(given: str, base: Path, project: str | None) -> str:
    if project is None:
        return f"{given!r} is outside the data root"
    return (
        f"{given!r} is not inside project {project}'s area: "
        f"the data of project {project}'s datasets lies under {base}/"
    )


def check_apart(path: Path, others: Iterable[str]) -> None:
    """Refuse a path equal to, inside, or containing another version's path."""
    for other in map(Path, others):
        if path == other or path.is_relative_to(other) or other.is_relative_to(path):
            raise InvalidInput(
                f"{path} overlaps {other}, the data of another version; "
                "each version lies in files of its own",
                field="path",
            )


def survey(root: Path, path: Path, *, project: str | None = None) -> tuple[Entry, ...]:
    """Everything in the version, in sorted order; refuses what a version may not hold, and a
    path that is not inside its area (`area`)."""
    base = area(root, project)
    real = Path(os.path.realpath(path))
    if real == base or not real.is_relative_to(base):
        raise InvalidInput(_outside(str(path), base, project), field="path")
    mode = _lstat(path).st_mode
    if stat.S_ISREG(mode):
        entries: tuple[Entry, ...] = (Entry("", FILE, _lstat(path).st_size),)
    elif stat.S_ISDIR(mode):
        entries = tuple(sorted(_walk(base, _where(base, project), path)))
    else:
        raise InvalidInput(f"{path} is not a regular file or a directory", field="path")
    if _count_files(entries) == 0 or sum(e.size for e in entries) == 0:
        raise InvalidInput(f"{path} is empty: a version holds data", field="path")
    return entries


def _walk(base: Path, where: str, top: Path) -> Iterable[Entry]:
    def refuse(error: OSError) -> None:
        raise InvalidInput(f"cannot read {error.filename}: {error.strerror}", field="path")

    for dirpath, dirnames, filenames in os.walk(top, onerror=refuse):
        for name in dirnames + filenames:
            yield _entry(base, where, top, Path(dirpath) / name)


def _entry(base: Path, where: str, top: Path, path: Path) -> Entry:
    relpath = path.relative_to(top).as_posix()
    info = _lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return Entry(relpath, LINK, target=_link_target(base, where, top, path, relpath))
    if stat.S_ISDIR(info.st_mode):
        return Entry(relpath, DIR)
    if stat.S_ISREG(info.st_mode):
        return Entry(relpath, FILE, info.st_size)
    raise InvalidInput(
        f"{relpath} is not a regular file, directory or link (a device, socket or pipe?)",
        field="path",
    )


def _link_target(base: Path, where: str, top: Path, link: Path, relpath: str) -> str:
    """Where a link inside the version leads, relative to the version; it must stay inside it."""
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(base):
        raise InvalidInput(f"{relpath} is a link that leads outside {where}", field="path")
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
    """Take every write bit off the version's files and directories (links have none), and
    let every identity read them: who may read a version is decided by which sandbox mounts it
    (a grant), and no one else can reach the data root (the facility's own, 0700)."""
    for entry in entries:
        if entry.kind != LINK:
            target = path / entry.relpath if entry.relpath else path
            _chmod(target, remove=WRITE_BITS, add=READ_BITS if entry.kind == FILE else OPEN_BITS)
    _chmod(path, remove=WRITE_BITS, add=OPEN_BITS)


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
