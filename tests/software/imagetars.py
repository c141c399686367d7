"""Image archives made in the test, as `skopeo copy … oci-archive:` and `docker save` write
them: a tiny busybox root file system, layers of any content (hostile ones too), and the
metadata that names them by digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifactory.software.images import ImportedImage, host_architecture, import_image

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: runs in any root file system


@dataclass(frozen=True)
class Entry:
    """One member of a layer: a file (data), a directory, a symlink or hard link (link)."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    link: str = ""


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, mode=0o777, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, link=target)


def device(name: str) -> Entry:
    return Entry(name, tarfile.CHRTYPE, mode=0o666)


def whiteout(name: str) -> Entry:
    """Deletes `name` (a path) from the layers below."""
    parent, _, base = name.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory_name: str) -> Entry:
    """Hides everything the layers below put in the directory."""
    return file(f"{directory_name}/.wh..wh..opq")


def layer(entries: Iterable[Entry], *, compress: bool = False) -> bytes:
    """A layer tar of `entries`, in order, owned by a uid the import must not keep."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode, info.linkname = entry.kind, entry.mode, entry.link
            info.uid = info.gid = 1234
            info.size = len(entry.data) if entry.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(entry.data) if info.size else None)
    data = buffer.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def busybox_layer(*, compress: bool = True) -> bytes:
    """/bin/busybox and a link for each of its applets, and the directories a system has."""
    program = BUSYBOX.read_bytes()
    if b"ld-linux" in program[:4096]:  # its program interpreter: a dynamic build
        raise RuntimeError(f"{BUSYBOX} is not static: install busybox-static")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries = [directory(d) for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root")]
    entries.append(file("bin/busybox", program, 0o755))
    entries += [symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"]
    entries.append(file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"))
    return layer(entries, compress=compress)


def config(
    diff_ids: Sequence[str],
    *,
    architecture: str | None = None,
    env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_VAR=from-image"),
    cmd: Sequence[str] = ("sh",),
) -> dict[str, Any]:
    return {
        "architecture": architecture or host_architecture(),
        "os": "linux",
        "config": {"Env": list(env), "Cmd": list(cmd), "WorkingDir": "/", "User": ""},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def diff_id(blob: bytes) -> str:
    return sha256(gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob)


def oci_archive(
    path: Path,
    layers: Sequence[bytes],
    *,
    ref: str | None = "busybox:test",
    image_config: dict[str, Any] | None = None,
    tampered: Mapping[int, bytes] | None = None,
) -> str:
    """An OCI image layout tar at `path`; its manifest's digest. `tampered` puts other bytes
    under a layer's name (layer index → bytes)."""
    made = image_config or config([diff_id(b) for b in layers])
    config_blob = json.dumps(made).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config_blob),
        "layers": [_descriptor(_layer_type(b), b) for b in layers],
    }
    manifest_blob = json.dumps(manifest).encode()
    top = _descriptor("application/vnd.oci.image.manifest.v1+json", manifest_blob)
    if ref:
        top["annotations"] = {"org.opencontainers.image.ref.name": ref}
    index = {"schemaVersion": 2, "manifests": [top]}
    blobs = {f"blobs/sha256/{sha256(b)[7:]}": b for b in (*layers, config_blob, manifest_blob)}
    for index_, other in (tampered or {}).items():
        blobs[f"blobs/sha256/{sha256(layers[index_])[7:]}"] = other
    _write_tar(
        path,
        {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
        | blobs,
    )
    return sha256(manifest_blob)


def docker_archive(path: Path, layers: Sequence[bytes], *, tags: Sequence[str] = ()) -> str:
    """A `docker save` tar at `path` (plain layers in <id>/layer.tar); its config's digest."""
    config_blob = json.dumps(config([sha256(b) for b in layers])).encode()
    config_name = f"{sha256(config_blob)[7:]}.json"
    names = [f"{hashlib.sha256(b'%d' % i).hexdigest()}/layer.tar" for i in range(len(layers))]
    manifest = [{"Config": config_name, "RepoTags": list(tags), "Layers": names}]
    members = {"manifest.json": json.dumps(manifest).encode(), config_name: config_blob}
    _write_tar(path, members | dict(zip(names, layers, strict=True)))
    return sha256(config_blob)


def import_busybox(images_dir: Path, work: Path, *, ref: str = "busybox:test") -> ImportedImage:
    """The busybox image, imported: what container tests run their jobs in."""
    tar = work / "busybox.tar"
    oci_archive(tar, [busybox_layer()], ref=ref)
    return import_image(images_dir, tar)


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(blob), "size": len(blob)}


def _layer_type(blob: bytes) -> str:
    gzipped = blob[:2] == b"\x1f\x8b"
    return "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
