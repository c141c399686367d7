"""The data root's rules on a real filesystem: real directories, files and symbolic links.

The tests run as root in CI, where the write bits do not stop writes, so read-only is checked
on the bits themselves.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from aifactory.errors import InvalidInput
from aifactory.governance import storage


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "data"
    made.mkdir()
    return made


def write(path: Path, data: bytes = b"hallo wereld\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def refused(root: Path, given: str) -> str:
    with pytest.raises(InvalidInput) as refusal:
        storage.store(root, storage.resolve(root, given))
    assert refusal.value.field == "path"
    return refusal.value.message


def writable(path: Path) -> bool:
    return bool(os.lstat(path).st_mode & storage.WRITE_BITS)


def test_a_directory_is_measured_hashed_and_made_read_only(root: Path) -> None:
    write(root / "books/a.txt", b"aap")
    write(root / "books/sub/b.txt", b"noot mies")
    (root / "books/empty").mkdir()
    stored = storage.store(root, storage.resolve(root, "books"))
    assert (stored.path, stored.size_bytes, stored.files) == (root.resolve() / "books", 12, 2)
    expected = hashlib.sha256()
    for rel, data in [("a.txt", b"aap"), ("sub/b.txt", b"noot mies")]:
        expected.update(rel.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\0")
    assert stored.sha256 == expected.hexdigest()
    for path in [root / "books", root / "books/a.txt", root / "books/sub", root / "books/empty"]:
        assert not writable(path), path
    assert writable(root)  # the root itself is left as it was


def test_a_file_hashes_to_its_bytes_and_the_digest_is_stable(root: Path, tmp_path: Path) -> None:
    write(root / "one.csv", b"id,name\n1,jan\n")
    stored = storage.store(root, storage.resolve(root, "one.csv"))
    assert (stored.size_bytes, stored.files) == (14, 1)
    assert stored.sha256 == hashlib.sha256(b"id,name\n1,jan\n").hexdigest()
    assert not writable(root / "one.csv")
    # The same tree elsewhere hashes the same; one changed byte does not.
    for name, data in [("x", b"aap"), ("y", b"aap"), ("z", b"aaq")]:
        write(root / name / "a.txt", data)
    x, y, z = (storage.store(root, root / n).sha256 for n in "xyz")
    assert x == y != z


def test_absolute_paths_inside_the_root_are_taken_resolved(root: Path) -> None:
    write(root / "books/a.txt")
    absolute = str(root / "books" / ".." / "books")
    assert storage.resolve(root, absolute) == root.resolve() / "books"
    # A link at the top that stays in the root is followed to the data it names.
    (root / "latest").symlink_to(root / "books")
    assert storage.resolve(root, "latest") == root.resolve() / "books"


def test_paths_outside_the_root_are_refused(root: Path, tmp_path: Path) -> None:
    write(tmp_path / "secret/a.txt")
    write(root / "books/a.txt")
    for given in ["../secret", "books/../../secret", str(tmp_path / "secret"), "/etc"]:
        assert "outside the data root" in refused(root, given), given
    for given in [".", str(root), "books/.."]:
        assert "not the root" in refused(root, given), given
    for given in ["", "  ", "nul\x00byte"]:
        assert "give the path" in refused(root, given), repr(given)


def test_a_link_at_the_top_that_leads_outside_is_refused(root: Path, tmp_path: Path) -> None:
    write(tmp_path / "secret/a.txt")
    (root / "escape").symlink_to(tmp_path / "secret")
    assert "outside the data root" in refused(root, "escape")
    (root / "up").symlink_to("..")  # a relative link, resolved from where it lies
    assert "outside the data root" in refused(root, "up/secret")


def test_a_link_anywhere_inside_that_leads_outside_is_refused(root: Path, tmp_path: Path) -> None:
    write(tmp_path / "secret/a.txt")
    write(root / "books/a.txt")
    write(root / "books/deep/er/b.txt")
    (root / "books/deep/er/leak").symlink_to(tmp_path / "secret/a.txt")
    assert "deep/er/leak is a link that leads outside the data root" in refused(root, "books")
    (root / "books/deep/er/leak").unlink()
    (root / "books/deep/dir-leak").symlink_to(tmp_path / "secret")
    assert "deep/dir-leak is a link that leads outside" in refused(root, "books")
    # Nothing was made read-only by a refused registration.
    assert writable(root / "books")
    assert writable(root / "books/a.txt")


def test_a_link_to_other_data_in_the_root_is_refused_and_one_inside_is_kept(root: Path) -> None:
    write(root / "other/x.txt")
    write(root / "books/a.txt")
    (root / "books/x").symlink_to(root / "other/x.txt")
    assert "outside this version" in refused(root, "books")
    (root / "books/x").unlink()
    (root / "books/again").symlink_to("a.txt")
    with_link = storage.store(root, root / "books")
    assert with_link.files == 1
    write(root / "plain/a.txt")
    assert with_link.sha256 != storage.store(root, root / "plain").sha256


def test_missing_empty_and_special_paths_are_refused(root: Path) -> None:
    assert "does not exist" in refused(root, "nope")
    (root / "dangling").symlink_to(root / "nope")
    assert "does not exist" in refused(root, "dangling")
    (root / "hollow/sub").mkdir(parents=True)
    assert "is empty" in refused(root, "hollow")
    write(root / "zero/a.txt", b"")
    assert "is empty" in refused(root, "zero")
    write(root / "zero.bin", b"")
    assert "is empty" in refused(root, "zero.bin")
    write(root / "odd/a.txt")
    os.mkfifo(root / "odd/pipe")
    assert "not a regular file, directory or link" in refused(root, "odd")
    os.mkfifo(root / "pipe")
    assert "not a regular file or a directory" in refused(root, "pipe")


@pytest.mark.parametrize(
    ("taken", "given"),
    [("books", "books"), ("books", "books/sub"), ("books/sub", "books"), ("books/a.txt", "books")],
)
def test_a_path_that_overlaps_another_version_is_refused(
    root: Path, taken: str, given: str
) -> None:
    write(root / "books/sub/b.txt")
    write(root / "books/a.txt")
    with pytest.raises(InvalidInput) as overlap:
        storage.check_apart(storage.resolve(root, given), [str(root.resolve() / taken)])
    assert overlap.value.field == "path"
    assert "overlaps" in overlap.value.message
    # Neighbours with a common prefix do not overlap.
    write(root / "books2/a.txt")
    storage.check_apart(storage.resolve(root, "books2"), [str(root.resolve() / taken)])


def test_thaw_gives_back_the_write_bit_on_directories(root: Path) -> None:
    write(root / "books/sub/a.txt")
    storage.store(root, root / "books")
    storage.thaw(root.resolve() / "books")
    assert writable(root / "books")
    assert writable(root / "books/sub")
    assert not writable(root / "books/sub/a.txt")  # files need none to be removed
    assert stat.S_IMODE(os.lstat(root / "books").st_mode) & stat.S_IWUSR
