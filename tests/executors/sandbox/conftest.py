"""The sandbox's tests need root where they make identities and control groups, as the
facility does: `make test` runs as root (or with sudo); elsewhere they fail in CI and skip,
saying why, outside it."""

from __future__ import annotations

import os

import pytest

requires_root = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="makes POSIX users and control groups: run the suite as root (make test does in CI)",
)
