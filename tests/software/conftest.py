"""A real registry (tests/software/registry.py) holding a few made-up packages, the project
identity builds run as, and the facility's data directory a build must never see.

Builds need bubblewrap: without it the tests skip, saying why — except in CI, where they run
and fail."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aifactory.executors.sandbox.identity import Identities, Identity, IdentityConfig
from aifactory.executors.sandbox.launcher import BWRAP
from aifactory.executors.sandbox.software import Software, host_software
from tests.software.registry import make_sdist, make_wheel, publish, serve

PROJECT_ID = 1
SECRET = "the facility's database password\n"

requires_sandbox = pytest.mark.skipif(
    not os.path.exists(BWRAP) and os.environ.get("CI") != "true",
    reason=f"builds run in bubblewrap's sandbox: install it ({BWRAP}); CI fails without it",
)

# An sdist's build backend runs the package's own code as the build's identity: this one
# tries to read the facility's secret and to list its data directory, and installs what it
# found as `aifhostile.SEEN`.
HOSTILE_BACKEND = """
import base64, hashlib, os, zipfile

def _seen():
    found = []
    try:
        with open({secret!r}) as handle:
            found.append("read: " + handle.read())
    except OSError as exc:
        found.append("secret: " + type(exc).__name__)
    try:
        found.append("data dir: " + ",".join(sorted(os.listdir({data!r}))))
    except OSError as exc:
        found.append("data dir: " + type(exc).__name__)
    return found

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "aifhostile-1.0.dist-info"
    files = {{
        "aifhostile/__init__.py": "SEEN = %r\\n" % (_seen(),),
        info + "/METADATA": "Metadata-Version: 2.1\\nName: aifhostile\\nVersion: 1.0\\n",
        info + "/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(text.encode())))
    files[info + "/RECORD"] = "\\n".join(record + [info + "/RECORD,,"]) + "\\n"
    name = "aifhostile-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return name
"""

# One whose build never ends: what a build timeout is for.
ENDLESS_BACKEND = """
import time

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    time.sleep(600)
"""

# One that lies about itself: a .pth file (run by every start of the environment's interpreter)
# that would print a report of its choosing, and a marker of its own at the environment's root
# (a wheel's data scheme installs there) naming the facility's files as its interpreter.
LIAR_FILES = {
    "zzz_aifliar.pth": 'import sys; print(\'{"installed": [{"metadata": 1}]}\')\n',
    "aifliar-1.0.data/data/aifactory-env.json": '{"base_prefix": "/var/lib/aifactory"}\n',
}

# One whose build takes all the memory it can: what a build's control group is for.
GREEDY_BACKEND = """
def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
"""

IN_TREE = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


@dataclass(frozen=True, slots=True)
class Registry:
    url: str  # the simple index
    data_dir: Path  # the facility's: environments are built under data_dir/software/envs
    secret: Path  # a file of the facility's, readable by all outside a sandbox


@pytest.fixture(scope="session")
def facility_data() -> Iterator[Path]:
    """The facility's data directory, outside /tmp (which a build has its own of) and open to
    every user: only the sandbox keeps a build out of it."""
    data = Path(tempfile.mkdtemp(prefix="aifactory-envbuild-", dir="/var/tmp"))
    data.chmod(0o755)
    (data / "secret.txt").write_text(SECRET)
    (data / "secret.txt").chmod(0o644)
    yield data
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, facility_data: Path) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    files = root / "files"
    secret = facility_data / "secret.txt"
    backend = HOSTILE_BACKEND.format(secret=str(secret), data=str(facility_data))
    publish(
        root,
        make_wheel(files, "aifprobe", "1.0", {"aifprobe/__init__.py": 'VERSION = "1.0"\n'}),
        make_wheel(files, "aifprobe", "2.0", {"aifprobe/__init__.py": 'VERSION = "2.0"\n'}),
        make_sdist(files, "aifhostile", "1.0", {"pyproject.toml": IN_TREE, "backend.py": backend}),
        make_sdist(
            files, "aifendless", "1.0", {"pyproject.toml": IN_TREE, "backend.py": ENDLESS_BACKEND}
        ),
        make_wheel(files, "aifliar", "1.0", LIAR_FILES, licence="x" * 5000),
        make_sdist(
            files, "aifgreedy", "1.0", {"pyproject.toml": IN_TREE, "backend.py": GREEDY_BACKEND}
        ),
    )
    with serve(root) as url:
        yield Registry(url, facility_data, secret)


@pytest.fixture(scope="session")
def identity() -> Identity:
    """The project's identity (made the first time, where the tests run as root)."""
    return Identities(IdentityConfig.for_this_process()).of(PROJECT_ID)


@pytest.fixture(scope="session")
def software(facility_data: Path) -> Software:
    return host_software(protected=[facility_data])
