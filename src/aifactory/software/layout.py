"""Where software lies under the facility's software directory: one place says it, for the
control plane that builds and imports, the control loop that names it in a launch, and the
Slurm executor whose nodes mount it by path.

    <software_dir>/envs/<key>/            a Python environment (aifactory-env.json when whole)
    <software_dir>/envs/<key>.log         its build's output
    <software_dir>/images/<hex>/          an image by its sha256 digest: rootfs/, image.json
"""

from __future__ import annotations

from pathlib import Path

ENV_MARKER = "aifactory-env.json"  # an environment's record, written last: it is whole


def environments_dir(software_dir: Path) -> Path:
    return software_dir / "envs"


def environment_dir(software_dir: Path, key: str) -> Path:
    return environments_dir(software_dir) / key


def build_log(software_dir: Path, key: str) -> Path:
    return environments_dir(software_dir) / f"{key}.log"


def images_dir(software_dir: Path) -> Path:
    return software_dir / "images"


def image_dir(software_dir: Path, digest: str) -> Path:
    return images_dir(software_dir) / digest.removeprefix("sha256:")
