"""Paths as the sandbox compares them: by their text, normalised by the caller (the checks
that matter are made on open descriptors, launcher.Binder)."""

from __future__ import annotations


def inside(path: str, directory: str) -> bool:
    """`path` is `directory` or lies below it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def overlaps(path: str, other: str) -> bool:
    """One of the two lies in the other."""
    return inside(path, other) or inside(other, path)
