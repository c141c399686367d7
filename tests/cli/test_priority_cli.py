"""`aifactory priority JOB N` against the real API (uvicorn in a thread over a fresh SQLite
database, no control loop: jobs stay PENDING), run in-process with typer's CliRunner."""

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
    """SQLite only: these tests are about the command; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(server: LiveServer, token: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--url", server.url, "--token", token, "priority", *args])


def test_an_admin_moves_a_waiting_job_down_and_up(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.admin_token) as admin:
        job_id = admin.submit(["true"])["id"]

        lowered = run(live_server, live_server.admin_token, str(job_id), "-5")
        assert lowered.exit_code == 0, lowered.output
        assert lowered.stdout == f"job {job_id} now waits at priority -5\n"
        raised = run(live_server, live_server.admin_token, str(job_id), "700", "--json")
        assert raised.exit_code == 0, raised.output
        assert json.loads(raised.stdout)["priority"] == 700
        assert admin.job(job_id)["priority"] == 700


def test_a_tenant_is_refused_and_the_job_keeps_its_priority(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.admin_token) as admin:
        dora = admin.create_user("dora")["token"]
        admin.add_member("default", "dora", "member")
        job_id = admin.submit(["true"])["id"]

        refused = run(live_server, dora, str(job_id), "5")

        assert isinstance(refused.exception, ApiError)
        assert refused.exception.status == 403
        assert "only admin or operator may" in refused.exception.message
        assert admin.job(job_id)["priority"] == 0
