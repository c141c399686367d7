"""An imported image as the executors see it: its record (`image.json`: digest, names, the
config a runtime needs) and its root file system. `software.images` writes both when an admin
imports an image; the executors only read them, by the image's directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_JSON = "image.json"
ROOTFS = "rootfs"


class ImageError(ValueError):
    """The archive is not an image this host can run, or not a safe one."""


@dataclass(frozen=True, slots=True)
class ImportedImage:
    dir: Path  # <images dir>/<hex>/
    digest: str  # sha256:<hex>
    names: tuple[str, ...] = ()
    architecture: str = ""
    os: str = "linux"
    env: tuple[str, ...] = ()  # "K=V"
    working_dir: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    size_bytes: int = 0
    layers: tuple[str, ...] = ()

    @property
    def rootfs(self) -> Path:
        return self.dir / ROOTFS

    def record(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "names": list(self.names),
            "architecture": self.architecture,
            "os": self.os,
            "env": list(self.env),
            "working_dir": self.working_dir,
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "user": self.user,
            "size_bytes": self.size_bytes,
            "layers": list(self.layers),
        }


def read_image(image_dir: Path) -> ImportedImage:
    """An imported image, from its `image.json`."""
    try:
        record = json.loads((image_dir / IMAGE_JSON).read_text())
    except (OSError, ValueError) as exc:
        raise ImageError(f"not an imported image: {image_dir} ({exc})") from None
    return ImportedImage(
        dir=image_dir,
        digest=str(record["digest"]),
        names=tuple(record.get("names", ())),
        architecture=str(record.get("architecture", "")),
        os=str(record.get("os", "linux")),
        env=tuple(record.get("env", ())),
        working_dir=str(record.get("working_dir", "")),
        entrypoint=tuple(record.get("entrypoint", ())),
        cmd=tuple(record.get("cmd", ())),
        user=str(record.get("user", "")),
        size_bytes=int(record.get("size_bytes", 0)),
        layers=tuple(record.get("layers", ())),
    )
