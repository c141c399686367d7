"""`aifactory nodes`, `nodes drain` and `nodes resume` against the real API (uvicorn in a thread
over a fresh SQLite database), run in-process with typer's CliRunner: the reason is shown."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.main import app
from aifactory.client import ApiError, Client
from aifactory.store.db import Database
from aifactory.store.nodes import upsert_node
from tests.conftest import TEST_NODE, LiveServer


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the command; the service tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(server: LiveServer, token: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--url", server.url, "--token", token, *args])


def test_an_operator_drains_a_node_and_everyone_sees_why(live_server: LiveServer) -> None:
    admin = live_server.admin_token
    drained = run(live_server, admin, "nodes", "drain", "node-1", "--reason", "PSU swap")
    assert drained.exit_code == 0, drained.output
    assert drained.stdout == "node node-1 drained: PSU swap (by admin)\n"

    listed = run(live_server, admin, "nodes")
    assert listed.exit_code == 0, listed.output
    assert "drained" in listed.stdout
    assert "PSU swap (by admin)" in listed.stdout
    assert "block" not in listed.stdout  # no topology declared: no column for it
    facility = run(live_server, admin, "facility")
    assert "no: PSU swap (by admin)" in facility.stdout
    (shown,) = json.loads(run(live_server, admin, "nodes", "--json").stdout)
    assert (shown["schedulable"], shown["drain_reason"], shown["drained_by"]) == (
        False,
        "PSU swap",
        "admin",
    )

    resumed = run(live_server, admin, "nodes", "resume", "node-1")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout == "node node-1 resumed: up\n"


def test_a_tenant_may_not_drain(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.admin_token) as admin:
        dora = admin.create_user("dora")["token"]
    refused = run(live_server, dora, "nodes", "drain", "node-1", "--reason", "mine")
    assert isinstance(refused.exception, ApiError)
    assert refused.exception.status == 403
    assert "only admin or operator may drain a node" in refused.exception.message


def test_nodes_show_their_network_block_once_the_facility_declares_one(
    live_server: LiveServer,
) -> None:
    with live_server.db.session() as session:
        upsert_node(
            session,
            replace(TEST_NODE, block="leaf7"),
            executor="local",
            gpu_ids=[str(i) for i in range(8)],
            now=time.time(),
        )
    listed = run(live_server, live_server.admin_token, "nodes")
    assert listed.exit_code == 0, listed.output
    assert "block" in listed.stdout
    assert "leaf7" in listed.stdout
    (shown,) = json.loads(run(live_server, live_server.admin_token, "nodes", "--json").stdout)
    assert shown["block"] == "leaf7"
