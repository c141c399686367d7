"""Importing images from tar files made here: both archive shapes, layers with whiteouts, the
same image twice, and hostile archives that try to write outside the image, smuggle a setuid
bit or a device node in, or lie about their content or platform."""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from aifactory.software.images import ImageError, import_image, read_image
from tests.software.imagetars import (
    Entry,
    busybox_layer,
    config,
    device,
    diff_id,
    directory,
    docker_archive,
    file,
    hardlink,
    layer,
    oci_archive,
    opaque,
    symlink,
    whiteout,
)

LOWER = [
    directory("opt"),
    directory("opt/old"),
    file("opt/old/a", b"a\n"),
    directory("opt/old/sub"),
    file("opt/old/sub/b", b"b\n"),
    file("etc/gone", b"gone\n"),
    file("keep/x", b"x\n", 0o600),
]
UPPER = [
    whiteout("etc/gone"),
    directory("opt/old"),
    file("opt/old/new", b"new\n"),
    opaque("opt/old"),  # after this layer's own entry: that one stays
    file("bin/tool", b"#!/bin/sh\n", 0o6755),  # setuid and setgid
    device("dev/sda"),
    hardlink("keep/y", "keep/x"),
]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path / "images"


def test_an_oci_archive_unpacks_its_layers_in_order_with_whiteouts(
    images: Path, tmp_path: Path
) -> None:
    tar = tmp_path / "image.tar"
    layers = [busybox_layer(), layer(LOWER, compress=True), layer(UPPER)]
    digest = oci_archive(tar, layers)

    image = import_image(images, tar, name="tools:1")

    assert image.digest == digest
    assert image.dir == images / digest.removeprefix("sha256:")
    assert image.names == ("busybox:test", "tools:1")
    assert image.env == ("PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_VAR=from-image")
    assert (image.cmd, image.working_dir) == (("sh",), "/")
    assert len(image.layers) == 3
    assert image.size_bytes > 1_000_000  # busybox
    assert read_image(image.dir) == image
    root = image.rootfs
    assert os.readlink(root / "bin" / "sh") == "busybox"
    assert not (root / "etc" / "gone").exists()
    assert sorted(p.name for p in (root / "opt" / "old").iterdir()) == ["new"]
    assert (root / "keep" / "y").read_text() == "x\n"
    assert not (root / "dev" / "sda").exists()  # a device node is left out


def test_what_is_unpacked_is_the_importers_readable_and_never_setuid(
    images: Path, tmp_path: Path
) -> None:
    tar = tmp_path / "image.tar"
    oci_archive(tar, [layer(LOWER), layer(UPPER)])

    root = import_image(images, tar).rootfs

    tool = (root / "bin" / "tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o755
    assert stat.S_IMODE((root / "keep" / "x").stat().st_mode) == 0o644  # world-readable
    assert tool.st_uid == os.geteuid()  # not the tar's 1234
    for path in (root.parent, root, root / "opt", root / "keep"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_importing_an_image_again_gives_the_one_there(images: Path, tmp_path: Path) -> None:
    tar = tmp_path / "image.tar"
    oci_archive(tar, [layer([file("a", b"1")])])
    first = import_image(images, tar)
    (first.rootfs / "a").chmod(0o600)  # a change the second import must not undo or redo

    again = import_image(images, tar, name="other:2")

    assert again.dir == first.dir
    assert again.names == ("busybox:test", "other:2")
    assert read_image(first.dir).names == ("busybox:test", "other:2")
    assert stat.S_IMODE((first.rootfs / "a").stat().st_mode) == 0o600
    assert [p.name for p in images.iterdir()] == [first.dir.name]  # no temporary left


def test_a_docker_archive_is_named_by_its_config(images: Path, tmp_path: Path) -> None:
    tar = tmp_path / "docker.tar"
    layers = [busybox_layer(compress=False), layer([file("etc/motd", b"hello\n")])]
    digest = docker_archive(tar, layers, tags=["busybox:docker"])

    image = import_image(images, tar)

    assert image.digest == digest
    assert image.names == ("busybox:docker",)
    assert image.layers == tuple(diff_id(b) for b in layers)
    assert (image.rootfs / "etc" / "motd").read_text() == "hello\n"
    assert (image.rootfs / "bin" / "busybox").stat().st_size > 0


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("../escaped", b"x")], "leaves the image"),
        ([file("etc/../../escaped", b"x")], "leaves the image"),
        ([file("/escaped", b"x")], "absolute path"),
        ([symlink("out", "{outside}"), file("out/escaped", b"x")], "is a link"),
        ([symlink("up", "../.."), file("up/escaped", b"x")], "is a link"),
        ([symlink("t", "{outside}/escaped"), directory("t"), file("t/x")], None),  # replaced
        ([hardlink("stolen", "../../escaped")], "leaves the image"),
    ],
)
def test_a_layer_never_writes_outside_the_image(
    images: Path, tmp_path: Path, entries: list[Entry], message: str | None
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [replace(e, link=e.link.replace("{outside}", str(outside))) for e in entries]
    tar = tmp_path / "hostile.tar"
    oci_archive(tar, [layer(entries)])

    if message is None:
        image = import_image(images, tar)
        assert (image.rootfs / "t").is_dir()
    else:
        with pytest.raises(ImageError, match=message):
            import_image(images, tar)
        assert list(images.iterdir()) == []  # the temporary directory went too
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped").exists()


def test_a_layer_that_is_not_what_its_digest_says_is_refused(images: Path, tmp_path: Path) -> None:
    tar = tmp_path / "tampered.tar"
    honest = layer([file("bin/tool", b"honest")])
    oci_archive(tar, [honest], tampered={0: layer([file("bin/tool", b"evil!!")])})

    with pytest.raises(ImageError, match=r"layer sha256:[0-9a-f]{64} does not match its digest"):
        import_image(images, tar)
    assert list(images.iterdir()) == []


def test_an_image_for_another_architecture_is_refused(images: Path, tmp_path: Path) -> None:
    tar = tmp_path / "foreign.tar"
    blob = layer([file("a")])
    oci_archive(tar, [blob], image_config=config([diff_id(blob)], architecture="s390x"))

    with pytest.raises(ImageError, match="the image is for s390x, this host runs"):
        import_image(images, tar)


def test_what_is_not_an_image_is_refused_clearly(images: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(__file__, arcname="notes.py")
    zstd = tmp_path / "zstd.tar"
    unknown = "sha256:" + "0" * 64
    oci_archive(zstd, [b"\x28\xb5\x2f\xfd" + bytes(100)], image_config=config([unknown]))

    with pytest.raises(ImageError, match=r"no index\.json or manifest\.json"):
        import_image(images, plain)
    with pytest.raises(ImageError, match="zstd-compressed"):
        import_image(images, zstd)
    with pytest.raises(ImageError, match="cannot read"):
        import_image(images, Path(__file__))


@pytest.mark.parametrize("name", [".wh..", "etc/.wh..", ".wh."])
def test_a_whiteout_of_no_file_is_refused(images: Path, tmp_path: Path, name: str) -> None:
    tar = tmp_path / "whiteout.tar"
    oci_archive(tar, [layer([directory("etc"), file("etc/keep", b"x"), file(name)])])
    (tmp_path / "canary").write_text("still here")

    with pytest.raises(ImageError, match="whiteout of no file"):
        import_image(images, tar)
    assert list(images.iterdir()) == []
    assert (tmp_path / "canary").read_text() == "still here"


def test_a_damaged_layer_or_config_is_refused_clearly(images: Path, tmp_path: Path) -> None:
    whole = layer([file("bin/tool", b"x" * 10_000)], compress=True)
    cut = tmp_path / "cut.tar"
    oci_archive(cut, [whole[: len(whole) // 2]], image_config=config([diff_id(whole)]))
    odd = tmp_path / "odd.tar"
    blob = layer([file("a")])
    made = config([diff_id(blob)])
    made["config"] = ["not", "a", "mapping"]
    oci_archive(odd, [blob], image_config=made)

    for tar in (cut, odd):
        with pytest.raises(ImageError):
            import_image(images, tar)
    assert list(images.iterdir()) == []
