"""`aifactory hold / release / update / cancel` against the real API (uvicorn in a thread over a
fresh SQLite database, no control loop: jobs stay where a test puts them), run in-process with
typer's CliRunner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.main import app
from aifactory.client import Client
from aifactory.domain.jobs import JobState
from aifactory.store.db import Database
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.conftest import LiveServer


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the commands; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


def run(
    server: LiveServer, *args: str, token: str | None = None, input: str | None = None
) -> Result:
    target = ["--url", server.url, "--token", token or server.admin_token]
    return CliRunner().invoke(app, [*target, *args], input=input, env={"COLUMNS": "250"})


def start(server: LiveServer, job_id: int) -> None:
    """As the control loop would: the job runs."""
    with server.db.session() as session:
        job = session.get_one(Job, job_id)
        for state in (JobState.ADMITTED, JobState.RUNNING):
            switch_job_state(session, job, state, now=time.time(), actor="test")


def test_cancel_by_id_asks_nothing_and_says_what_became_of_each(
    live_server: LiveServer, admin: Client
) -> None:
    waiting = admin.submit(["true"])["id"]
    running = admin.submit(["true"])["id"]
    start(live_server, running)

    done = run(live_server, "cancel", str(waiting), str(running))

    assert done.exit_code == 0, done.output
    assert done.stdout == f"job {waiting} cancelled\njob {running} is being stopped\n"
    again = run(live_server, "cancel", str(waiting), "999999")
    assert again.exit_code == 1
    assert again.stdout == f"job {waiting} already ended (CANCELLED)\n"
    assert again.stderr == "error: job 999999 not found\n"


def test_cancel_by_filter_lists_the_jobs_and_asks_once(
    live_server: LiveServer, admin: Client
) -> None:
    sweep = [admin.submit(["true"], name=f"sweep-{i}")["id"] for i in range(3)]
    other = admin.submit(["true"], name="train")["id"]

    declined = run(live_server, "cancel", "--name", "sweep", input="n\n")

    assert declined.exit_code == 1
    for job_id in sweep:
        assert f"sweep-{sweep.index(job_id)}" in declined.stdout
    assert "Cancel these 3 job(s)? [y/N]" in declined.stderr
    assert "nothing cancelled" in declined.stderr
    assert {admin.job(i)["state"] for i in sweep} == {"PENDING"}

    agreed = run(live_server, "cancel", "--name", "sweep", "--state", "pending", input="y\n")

    assert agreed.exit_code == 0, agreed.output
    assert agreed.stdout.endswith("".join(f"job {i} cancelled\n" for i in sweep))
    assert {admin.job(i)["state"] for i in sweep} == {"CANCELLED"}
    assert admin.job(other)["state"] == "PENDING"
    nothing = run(live_server, "cancel", "--name", "sweep")
    assert nothing.exit_code == 0
    assert nothing.stderr == "no job you may cancel matches\n"


def test_cancel_with_yes_and_json_asks_nothing_and_prints_only_json(
    live_server: LiveServer, admin: Client
) -> None:
    mine = [admin.submit(["true"])["id"] for _ in range(2)]

    done = run(live_server, "cancel", "--all-mine", "--yes", "--json")

    assert done.exit_code == 0, done.output
    answered = json.loads(done.stdout)
    assert [(r["job_id"], r["outcome"]) for r in answered] == [(i, "cancelled") for i in mine]
    assert done.stderr == ""


def test_cancel_needs_ids_or_filters_not_both(live_server: LiveServer) -> None:
    for args in (["cancel"], ["cancel", "1", "--all-mine"]):
        refused = run(live_server, *args)
        assert refused.exit_code == 2
        assert "give job ids" in refused.output


def test_hold_release_and_update_a_waiting_job(live_server: LiveServer, admin: Client) -> None:
    first, second = (admin.submit(["true"], name="train")["id"] for _ in range(2))

    held = run(live_server, "hold", str(first), str(second), "--reason", "new data")
    assert held.exit_code == 0, held.output
    assert held.stdout == f"job {first} held\njob {second} held\n"
    assert admin.job(first)["state_reason"] == "held by admin: new data"
    released = run(live_server, "release", str(first), "999999")
    assert released.exit_code == 1
    assert released.stdout == f"job {first} released: PENDING\n"
    assert released.stderr == "error: job 999999 not found\n"

    updated = run(live_server, "update", str(first), "--time-limit", "30m", "--priority", "-5")
    assert updated.exit_code == 0, updated.output
    assert updated.stdout == f"job {first} train: time limit 1800 s, priority -5\n"
    as_json = run(live_server, "update", str(first), "--name", "train-2", "--json")
    assert json.loads(as_json.stdout)["name"] == "train-2"
    bare = run(live_server, "update", str(first), "--time-limit", "30")
    assert bare.exit_code == 2
    assert "ambiguous" in bare.output
    assert run(live_server, "update", str(first)).exit_code == 2
