"""`aifactory maintenance` against the real API (uvicorn in a thread over SQLite), run
in-process with typer's CliRunner: an operator plans and calls off a window, everyone lists it,
and bad input is refused naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.main import app
from aifactory.client import ApiError, Client
from aifactory.store.db import Database
from tests.conftest import LiveServer


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the command; the service tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(server: LiveServer, token: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--url", server.url, "--token", token, *args])


def test_an_operator_plans_a_window_and_everyone_sees_it(live_server: LiveServer) -> None:
    admin = live_server.admin_token
    assert run(live_server, admin, "maintenance").stdout == "no maintenance planned\n"
    made = run(
        live_server,
        admin,
        "maintenance",
        "create",
        "--nodes",
        "node-1",
        "--from",
        "+2h",
        "--to",
        "+5h",
        "--reason",
        "firmware",
    )
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("maintenance 1: node-1 from ")
    assert made.stdout.endswith("; 0 notification(s) queued\n")

    with Client(live_server.url, admin) as api:
        dora = api.create_user("dora")["token"]
    listed = run(live_server, dora, "maintenance")
    assert listed.exit_code == 0, listed.output
    assert "firmware" in listed.stdout
    assert "upcoming" in listed.stdout
    (shown,) = json.loads(run(live_server, dora, "maintenance", "--json").stdout)
    assert (shown["nodes"], shown["all_nodes"], shown["created_by"]) == (["node-1"], False, "admin")

    refused = run(live_server, dora, "maintenance", "cancel", "1")
    assert isinstance(refused.exception, ApiError)
    assert refused.exception.status == 403
    called_off = run(live_server, admin, "maintenance", "cancel", "1")
    assert called_off.stdout == "maintenance 1 called off (0 notification(s))\n"
    assert run(live_server, dora, "maintenance").stdout == "no maintenance planned\n"
    assert "cancelled" in run(live_server, dora, "maintenance", "--all").stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--from", "+2h", "--to", "+1h", "--reason", "r"], "ends_at"),
        (["--from", "2020-01-01", "--to", "+1h", "--reason", "r"], "begins_at"),
        (["--nodes", "node-9", "--from", "+1h", "--to", "+2h", "--reason", "r"], "nodes"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(
    live_server: LiveServer, args: list[str], field: str
) -> None:
    refused = run(live_server, live_server.admin_token, "maintenance", "create", *args)
    assert isinstance(refused.exception, ApiError)
    assert refused.exception.status == 422
    assert [e["field"] for e in refused.exception.errors] == [field]
