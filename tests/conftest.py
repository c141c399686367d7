"""Fixtures that start real services: SQLite files, a PostgreSQL server, a live API server, a
Slurm cluster.

Store and API tests take `db_url`, which runs each of them on SQLite and on PostgreSQL, each
test on a fresh database copied from a migrated template.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.faces.state import AppState
from aifactory.server import facility_app
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from aifactory.store.migrate import upgrade
from aifactory.store.nodes import upsert_node
from tests.oidc_provider import OidcProvider
from tests.postgres import create_database, free_port, postgres_server
from tests.slurm_cluster import SlurmCluster, running_cluster

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_counter = itertools.count()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        server = postgres_server()
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        template_url = create_database(url, "aifactory_template")
        upgrade(template_url)
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "aifactory.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    return create_database(
        admin_url, f"test_{os.getpid()}_{next(_counter)}", template="aifactory_template"
    )


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "aifactory.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


TEST_NODE = Node(
    id="node-1", site="NL", gpu_model="h100", capacity=Resources(gpus=8, cpus=32, memory_mb=256_000)
)


def seed_facility(database: Database, now: float) -> str:
    """Bootstrap an admin and one 8-GPU node; return the admin token."""
    with database.session() as session:
        token = bootstrap(session, now=now)
        upsert_node(
            session, TEST_NODE, executor="local", gpu_ids=[str(i) for i in range(8)], now=now
        )
    assert token is not None
    return token


@dataclass
class LiveServer:
    url: str
    admin_token: str
    db: Database
    logs_dir: Path
    submissions: list[float]
    state: AppState


@pytest.fixture
def live_server(db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    """The real API and portal on a real port (uvicorn in a thread), over the test's database."""
    with serving(db, tmp_path) as server:
        yield server


@contextmanager
def serving(db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    """Seed `db` (tests.conftest.seed_facility) and serve the API over it until the end."""
    token = seed_facility(db, time.time())
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    (tmp_path / "datasets").mkdir()
    woken: list[float] = []
    state = AppState(
        db=db,
        clock=time.time,
        locate_log=lambda job: logs_dir / f"{job}.log",
        on_submit=lambda: woken.append(time.time()),
        ready=lambda: True,
        data_root=tmp_path / "datasets",
        jobs_dir=tmp_path / "jobs",
        software_dir=tmp_path / "software",
    )
    port = free_port()
    config = uvicorn.Config(
        facility_app(state, max_body_bytes=64 * 1024),
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", token, db, logs_dir, woken, state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def shared_base() -> Iterator[Path]:
    """The session's stand-in for a cluster's shared file system: a directory the projects'
    identities can reach (0711: traversable, not listable), unlike pytest's own (0700)."""
    base = Path(tempfile.mkdtemp(prefix="aifactory-shared-", dir="/tmp"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shared_tmp(shared_base: Path, request: pytest.FixtureRequest) -> Path:
    """A test's own directory on the shared file system (see shared_base)."""
    path = Path(tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=shared_base))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real one-host Slurm cluster (tests/slurm_cluster.py) for the session; fails, never
    skips, when Slurm is not installed."""
    try:
        running = running_cluster()
        cluster = running.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield cluster
    finally:
        running.__exit__(None, None, None)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID provider (node-oidc-provider, tests/oidc_provider.py) for the session, with
    its default accounts and clients; fails, never skips, when Node.js is not installed. A test
    that restarts it (other keys) must restart it again with the defaults when done."""
    try:
        provider = OidcProvider().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield provider
    finally:
        provider.__exit__(None, None, None)
