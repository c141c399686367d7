"""Importing OCI images from a tar file an operator hands over (never pulled from a registry).

An imported image lives in `<images dir>/<hex>/`, named by its digest: `rootfs/` (its layers
unpacked in order, whiteouts applied) and `image.json` (what the runtime needs of its config:
env, working dir, entrypoint…, and the names it was imported under). The directory appears
whole or not at all: everything is made in a temporary directory beside it and renamed.

Two archive shapes are read: an OCI image layout (`index.json`, `blobs/sha256/…`; written by
`skopeo copy … oci-archive:` and `podman save --format oci-archive`) and a docker archive
(`manifest.json` with Config/RepoTags/Layers; `docker save`). The digest is the image
manifest's sha256; a docker archive has none, so its config's sha256 stands for it.

Invariants (a tar is untrusted input): every blob is checked against its digest and every
layer against the config's diff_ids; layers are unpacked by `layers.unpack_layer`, which never
writes outside the rootfs, through a link, a device node or a setuid bit. The image's directory
is 0755 and its files world-readable: tenants' jobs and Slurm nodes read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aifactory.executors.sandbox.image import (
    IMAGE_JSON,
    ROOTFS,
    ImageError,
    ImportedImage,
    read_image,
)
from aifactory.software.layers import LayerError, unpack_layer

__all__ = ["ImageError", "ImportedImage", "import_image", "read_image"]

MAX_JSON_BYTES = 8 * 1024 * 1024
REF_ANNOTATIONS = ("org.opencontainers.image.ref.name", "io.containerd.image.name")
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_HEX = re.compile(r"[0-9a-f]{64}")
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True, slots=True)
class _Layer:
    member: str  # its name in the archive
    digest: str | None  # of the blob as stored (None: a docker archive's layer.tar)
    diff_id: str | None  # of the uncompressed tar (the config's rootfs.diff_ids)


@dataclass(frozen=True, slots=True)
class _Found:
    """What the archive says, before anything is unpacked."""

    digest: str
    names: tuple[str, ...]
    config: Mapping[str, Any]
    layers: tuple[_Layer, ...]


def host_architecture() -> str:
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine)


def import_image(images_dir: Path, tar_path: Path, *, name: str | None = None) -> ImportedImage:
    """Import the image in `tar_path` (an OCI layout or docker archive) under `images_dir`;
    the one already there if it was imported before (with `name` added to its names)."""
    images_dir.mkdir(parents=True, exist_ok=True)
    try:
        archive = tarfile.open(tar_path, "r:*")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"cannot read {tar_path} as a tar file: {exc}") from None
    with archive:
        members = _members(archive)
        try:
            found = _find(archive, members)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ImageError(f"{tar_path}: malformed image metadata ({exc!r})") from None
        names = tuple(dict.fromkeys([*found.names, *([name] if name else [])]))
        existing = images_dir / found.digest.removeprefix("sha256:")
        if (existing / IMAGE_JSON).is_file():
            return _add_names(read_image(existing), names)
        try:
            _check_platform(found.config)
            return _unpack(archive, members, found, names, images_dir)
        except (OSError, EOFError, zlib.error, tarfile.TarError, AttributeError, TypeError) as exc:
            raise ImageError(f"{tar_path}: a damaged or malformed image ({exc!r})") from None


# ---- reading the archive -------------------------------------------------------------------


def _members(archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {_clean(m.name): m for m in archive.getmembers() if m.isfile()}


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def _read(archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    if member is None:
        raise ImageError(f"the archive has no {name}")
    if member.size > MAX_JSON_BYTES:
        raise ImageError(f"{name} is too large for an image's metadata")
    handle = archive.extractfile(member)
    assert handle is not None  # a regular file
    with handle:
        return handle.read()


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise ImageError(f"{what} is not valid JSON") from None


def _blob_name(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256" or not _HEX.fullmatch(hex_):
        raise ImageError(f"unsupported digest {digest!r} (sha256 only)")
    return f"blobs/sha256/{hex_}"


def _blob(archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], digest: str) -> bytes:
    data = _read(archive, members, _blob_name(digest))
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ImageError(f"blob {digest} does not match its digest")
    return data


def _find(archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo]) -> _Found:
    if "index.json" in members:
        return _find_oci(archive, members)
    if "manifest.json" in members:
        return _find_docker(archive, members)
    raise ImageError("not an OCI image layout or docker archive: no index.json or manifest.json")


def _find_oci(archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo]) -> _Found:
    index = _json(_read(archive, members, "index.json"), "index.json")
    descriptor = _pick(archive, members, index)
    manifest = _json(_blob(archive, members, descriptor["digest"]), "the image manifest")
    config = _json(_blob(archive, members, manifest["config"]["digest"]), "the image config")
    diff_ids = _diff_ids(config, len(manifest.get("layers", [])))
    layers = tuple(
        _Layer(_blob_name(layer["digest"]), layer["digest"], diff_id)
        for layer, diff_id in zip(manifest.get("layers", []), diff_ids, strict=True)
    )
    annotations = descriptor.get("annotations") or {}
    names = tuple(str(annotations[k]) for k in REF_ANNOTATIONS if annotations.get(k))
    return _Found(str(descriptor["digest"]), names, config, layers)


def _pick(
    archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], index: Any
) -> dict[str, Any]:
    """The manifest for this host's platform, looking into nested indexes (multi-arch
    images); the first one whose platform is not said, or matches."""
    wanted = host_architecture()
    for descriptor in index.get("manifests", []):
        if descriptor.get("mediaType") in INDEX_TYPES:  # a multi-arch image
            nested = _json(_blob(archive, members, descriptor["digest"]), "a nested index")
            inner = _pick(archive, members, nested)
            names = {**(descriptor.get("annotations") or {}), **(inner.get("annotations") or {})}
            return {**inner, "annotations": names}
        platform_ = descriptor.get("platform") or {}
        if platform_.get("architecture", wanted) == wanted:
            return dict(descriptor)
    found = {str((d.get("platform") or {}).get("architecture")) for d in index.get("manifests", [])}
    has = ", ".join(sorted(found)) or "none"
    raise ImageError(f"no image for {wanted} in this archive (it has: {has})")


def _find_docker(archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo]) -> _Found:
    entries = _json(_read(archive, members, "manifest.json"), "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError("manifest.json names no image")
    entry = entries[0]
    config_name = _clean(str(entry["Config"]))
    data = _read(archive, members, config_name)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    named = _HEX.search(config_name)
    if named is not None and named.group() != digest.removeprefix("sha256:"):
        raise ImageError(f"config {config_name} does not match its digest")
    config = _json(data, "the image config")
    paths = [_clean(str(p)) for p in entry.get("Layers", [])]
    diff_ids = _diff_ids(config, len(paths))
    layers = tuple(
        _Layer(p, _digest_in_name(p), diff_id) for p, diff_id in zip(paths, diff_ids, strict=True)
    )
    return _Found(digest, tuple(str(t) for t in entry.get("RepoTags") or ()), config, layers)


def _digest_in_name(path: str) -> str | None:
    """A layer stored as blobs/sha256/<hex> is named by its digest; `<id>/layer.tar` is not."""
    found = re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", path)
    return f"sha256:{found[1]}" if found else None


def _diff_ids(config: Any, count: int) -> list[str | None]:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if diff_ids is None:
        return [None] * count
    if len(diff_ids) != count:
        raise ImageError(f"the config lists {len(diff_ids)} layers, the manifest {count}")
    return [str(d) for d in diff_ids]


def _check_platform(config: Mapping[str, Any]) -> None:
    wanted = host_architecture()
    architecture, os_ = config.get("architecture"), config.get("os", "linux")
    if os_ != "linux":
        raise ImageError(f"the image is for {os_}, not linux")
    if architecture != wanted:
        raise ImageError(f"the image is for {architecture}, this host runs {wanted}")


def _add_names(image: ImportedImage, names: Sequence[str]) -> ImportedImage:
    merged = tuple(dict.fromkeys([*image.names, *names]))
    if merged == image.names:
        return image
    image = replace(image, names=merged)
    _write_record(image.dir, image)
    return image


def _write_record(image_dir: Path, image: ImportedImage) -> None:
    tmp = image_dir / f".{IMAGE_JSON}.tmp"
    tmp.write_text(json.dumps(image.record(), indent=1) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, image_dir / IMAGE_JSON)


# ---- unpacking -----------------------------------------------------------------------------


def _unpack(
    archive: tarfile.TarFile,
    members: Mapping[str, tarfile.TarInfo],
    found: _Found,
    names: tuple[str, ...],
    images_dir: Path,
) -> ImportedImage:
    """Every layer into a temporary directory, then renamed into place at once."""
    hex_ = found.digest.removeprefix("sha256:")
    tmp = Path(tempfile.mkdtemp(prefix=f".import-{hex_[:12]}-", dir=images_dir))
    try:
        (tmp / ROOTFS).mkdir()
        (tmp / ROOTFS).chmod(0o755)
        root_fd = os.open(tmp / ROOTFS, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            size = sum(_apply_layer(archive, members, layer, root_fd) for layer in found.layers)
        finally:
            os.close(root_fd)
        image = _image(images_dir / hex_, found, names, size)
        _write_record(tmp, image)
        tmp.chmod(0o755)
        try:
            tmp.rename(images_dir / hex_)
        except OSError:  # imported meanwhile by another import: theirs stands
            if not (images_dir / hex_ / IMAGE_JSON).is_file():
                raise
            return _add_names(read_image(images_dir / hex_), names)
        return image
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _image(image_dir: Path, found: _Found, names: tuple[str, ...], size: int) -> ImportedImage:
    run = found.config.get("config") or {}
    if not isinstance(run, Mapping):
        raise ImageError("the image's config is not a mapping")
    return ImportedImage(
        dir=image_dir,
        digest=found.digest,
        names=names,
        architecture=str(found.config.get("architecture", "")),
        os=str(found.config.get("os", "linux")),
        env=tuple(str(e) for e in run.get("Env") or ()),
        working_dir=str(run.get("WorkingDir") or ""),
        entrypoint=tuple(str(a) for a in run.get("Entrypoint") or ()),
        cmd=tuple(str(a) for a in run.get("Cmd") or ()),
        user=str(run.get("User") or ""),
        size_bytes=size,
        layers=tuple(layer.digest or layer.diff_id or layer.member for layer in found.layers),
    )


def _apply_layer(
    archive: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], layer: _Layer, root_fd: int
) -> int:
    """Unpack one layer over the rootfs, checking both its digests; the bytes it wrote."""
    what = layer.digest or layer.diff_id or layer.member
    member = members.get(layer.member)
    if member is None:
        raise ImageError(f"layer {what} is not in the archive")
    blob = archive.extractfile(member)
    assert blob is not None  # a regular file
    with blob:
        try:
            unpacked = unpack_layer(blob, root_fd, what)
        except LayerError as exc:
            raise ImageError(str(exc)) from None
    if layer.digest is not None and unpacked.stored_digest != layer.digest:
        raise ImageError(f"layer {layer.digest} does not match its digest")
    if layer.diff_id is not None and unpacked.diff_id != layer.diff_id:
        raise ImageError(f"layer {what} does not match its diff_id {layer.diff_id}")
    return unpacked.size_bytes
