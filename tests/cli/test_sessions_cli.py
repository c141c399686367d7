"""`aifactory session` against the real API (uvicorn in a thread over a fresh SQLite database, no
control loop: a session's job stays PENDING until a test sets it running in the database), run
in-process with typer's CliRunner, as the bootstrapped admin in their project `default`; what a
user sees when refused, run as a user runs it (`python -m aifactory`). The SDK's calls are
covered with them: the commands are made of nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from aifactory.cli.main import app
from aifactory.client import Client
from aifactory.store.db import Database
from aifactory.store.models import InteractiveSession, Job
from tests.conftest import LiveServer

CULLED = "idle for 31 min (no kernel activity and no connection; its idle timeout is 30 min)"


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the commands; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(server: LiveServer, *args: str, token: str | None = None, **env: str | None) -> Result:
    target = ["--url", server.url, "--token", token or server.admin_token]
    return CliRunner().invoke(app, [*target, "session", *args], env={"COLUMNS": "250", **env})


def ok(server: LiveServer, *args: str) -> Result:
    result = run(server, *args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def as_json(server: LiveServer, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json").stdout)


def aifactory(
    server: LiveServer, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: its errors as main() prints them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    env = {**clean, "AIFACTORY_URL": server.url, "AIFACTORY_TOKEN": token or server.admin_token}
    return subprocess.run(
        [sys.executable, "-m", "aifactory", "session", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def started(server: LiveServer) -> int:
    made: int = as_json(server, "start")["id"]
    return made


def set_running(server: LiveServer, session_id: int) -> None:
    """As the control loop would have it: its job runs (no JupyterLab is needed to open it)."""
    with server.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == session_id)
            .values(state="RUNNING", admitted_at=time.time(), started_at=time.time())
        )


def test_start_list_show_and_stop(live_server: LiveServer) -> None:
    asked = as_json(
        live_server, "start", "--kind", "shell", "--gpus", "1", "--cpus", "2", "--memory", "8G",
        "--time-limit", "2h", "--idle-timeout", "15m",
    )  # fmt: skip
    assert asked["kind"] == "shell"
    assert (asked["gpus"], asked["cpus"], asked["memory_mb"]) == (1, 2, 8192)
    assert (asked["time_limit_s"], asked["idle_timeout_s"]) == (7200, 900.0)
    assert (asked["state"], asked["project"], asked["ready"]) == ("PENDING", "default", False)
    sid = asked["id"]

    said = ok(live_server, "start", "--project", "default").stdout
    other = int(said.split()[1])
    assert said.startswith(
        f"session {other} PENDING in project default (jupyter, 0 GPU, 1 CPU, 4 GB)"
    )
    assert f"next: aifactory session open {other}" in said

    listed = ok(live_server, "list").stdout
    assert listed.index(str(other)) < listed.index(f"│ {sid} ")  # newest first
    assert "shell" in listed
    assert "jupyter" in listed
    assert [s["id"] for s in as_json(live_server, "list", "--project", "default")] == [other, sid]

    shown = ok(live_server, "show", str(sid)).stdout
    assert shown.startswith(f"session {sid}  shell  [PENDING]")
    assert "1 GPU, 2 CPU, 8 GB; time limit 2 h, idle timeout 15 min" in shown
    assert f"next    aifactory session open {sid}" in shown
    assert as_json(live_server, "show", str(sid)) == asked  # nothing has changed while it waits

    assert ok(live_server, "stop", str(sid)).stdout == f"session {sid} CANCELLED\n"
    shown = ok(live_server, "show", str(sid)).stdout
    assert "[CANCELLED]" in shown
    assert "next" not in shown


def test_open_is_refused_until_it_runs_then_prints_a_one_use_link(live_server: LiveServer) -> None:
    sid = started(live_server)

    waiting = aifactory(live_server, "open", str(sid), "--no-browser")
    assert waiting.returncode == 1
    assert waiting.stdout == ""
    assert waiting.stderr == (
        f"error: session_id: session {sid} is pending: it can be opened while it runs\n"
    )

    set_running(live_server, sid)
    opened = ok(live_server, "open", str(sid), "--no-browser")
    url = opened.stdout.strip()
    assert url.startswith(f"http://s{sid}.localhost:")
    assert f"/sessions/{sid}/_aifactory/enter?ticket=" in url
    assert "works once, within a minute" in opened.stderr
    again = as_json(live_server, "open", str(sid), "--no-browser")
    assert again["id"] == sid
    assert again["url"] != url  # a new link each time: each works once


@pytest.mark.skipif(sys.platform != "linux", reason="a display is assumed elsewhere")
def test_open_without_a_display_prints_the_link_for_another_browser(
    live_server: LiveServer,
) -> None:
    sid = started(live_server)
    set_running(live_server, sid)

    opened = run(live_server, "open", str(sid), DISPLAY=None, WAYLAND_DISPLAY=None)

    assert opened.exit_code == 0, opened.output
    assert f"/sessions/{sid}/_aifactory/enter?ticket=" in opened.stdout
    assert "no display here to open it on" in opened.stderr


def test_a_culled_session_says_why(live_server: LiveServer) -> None:
    sid = started(live_server)
    with live_server.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == sid)
            .values(state="CANCELLED", started_at=time.time() - 3600, ended_at=time.time())
        )
        session.execute(
            update(InteractiveSession)
            .where(InteractiveSession.job_id == sid)
            .values(culled_reason=CULLED)
        )

    assert f"culled: {CULLED}" in " ".join(ok(live_server, "list").stdout.split())
    shown = ok(live_server, "show", str(sid)).stdout.splitlines()
    assert shown[1] == f"  CULLED  {CULLED}"  # right under its state


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--idle-timeout", "0s"], 1, "error: idle_timeout_s: "),
        (["--idle-timeout", "30"], 2, "error: --idle-timeout: 30 is ambiguous"),
        (["--memory", "8"], 2, "error: --memory: 8 is ambiguous: write 8M or 8G"),
        (["--kind", "vnc"], 2, "error: --kind: "),
    ],
)
def test_bad_input_is_one_line_naming_what(
    live_server: LiveServer, args: list[str], code: int, line: str
) -> None:
    ran = aifactory(live_server, "start", *args)

    assert ran.returncode == code
    assert ran.stdout == ""
    assert ran.stderr.startswith(line), ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr  # no traceback
    with Client(live_server.url, live_server.admin_token) as api:
        assert api.sessions() == []  # nothing was started


def test_a_user_of_another_project_is_told_it_is_not_found(live_server: LiveServer) -> None:
    sid = started(live_server)
    with Client(live_server.url, live_server.admin_token) as admin:
        admin.create_organisation("tu-delft", "university")
        eve = admin.create_user("eve")["token"]
        admin.create_project("vision", "tu-delft", owner="eve")

    for command in ("show", "open", "stop"):
        ran = aifactory(live_server, command, str(sid), token=eve)
        assert ran.returncode == 1
        assert ran.stderr == f"error: session_id: session {sid} not found\n", command
    assert json.loads(ok(live_server, "list", "--json").stdout)[0]["state"] == "PENDING"
    assert run(live_server, "list", "--json", token=eve).stdout == "[]\n"


def test_the_sdk_waits_until_it_is_ready_or_has_ended(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.admin_token) as api:
        sid = api.start_session(project="default", idle_timeout_s=600)["id"]
        with pytest.raises(TimeoutError, match=f"session {sid} still PENDING"):
            api.wait_session_ready(sid, timeout_s=0)

        set_running(live_server, sid)
        with live_server.db.session() as session:  # the culler has heard from its server
            session.execute(
                update(InteractiveSession)
                .where(InteractiveSession.job_id == sid)
                .values(checked_at=time.time(), last_activity_at=time.time())
            )
        assert api.wait_session_ready(sid, timeout_s=0)["ready"] is True

        stopped = api.stop_session(sid)
        assert stopped["stopping"] is True
        other = api.start_session(project="default")["id"]
        api.stop_session(other)
        ended = api.wait_session_ready(other, timeout_s=0)
        assert (ended["ready"], ended["state"]) == (False, "CANCELLED")
