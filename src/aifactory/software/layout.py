"""Where software lies under the facility's software directory: one place says it, for the
control plane that builds and imports and the control loop that names it in a launch (the
executors get the paths; a Slurm node mounts them by path).

    <software_dir>/envs/<key>/            a Python environment (aifactory-env.json when whole)
    <software_dir>/envs/<key>.log         its build's output
    <software_dir>/images/<hex>/          an image by its sha256 digest: rootfs/, image.json
"""

from __future__ import annotations

from pathlib import Path

from aifactory.executors.sandbox.environment import ENV_MARKER

__all__ = [
    "ENV_MARKER",
    "build_log",
    "environment_dir",
    "environments_dir",
    "image_dir",
    "images_dir",
]


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
