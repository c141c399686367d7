"""What `aifactory` prints when something goes wrong, run as a user runs it (`python -m
aifactory`): one line on stderr, or with `--json` one JSON object there, and a non-zero exit —
for the facility's refusals and for what the CLI refuses itself. And `--version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from aifactory.store.db import Database
from tests.conftest import LiveServer, serving
from tests.postgres import free_port

BOX = set("╭╮╰╯│─")


def aifactory(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    return subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        capture_output=True,
        text=True,
        env={**clean, "AIFACTORY_URL": f"http://127.0.0.1:{free_port()}", **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    database = Database(sqlite_url)
    try:
        with serving(database, tmp_path) as running:
            yield running
    finally:
        database.dispose()


def as_admin(server: LiveServer) -> dict[str, str]:
    return {"AIFACTORY_URL": server.url, "AIFACTORY_TOKEN": server.admin_token}


def test_version_is_the_installed_one() -> None:
    ran = aifactory("--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == f"aifactory {version('aifactory')}\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["show", "seven"], "error: JOB_ID: "),
        (["jobs", "--bogus"], "error: No such option: --bogus (see "),
        (["org", "create", "uva"], "error: Missing option '--kind'."),
    ],
)
def test_what_the_cli_refuses_is_one_line(args: list[str], line: str) -> None:
    ran = aifactory(*args)
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr.startswith(line)
    assert ran.stderr.endswith(f"{' '.join(args[:-1])} --help)\n")  # where the help is
    assert not BOX & set(ran.stderr)


def test_with_json_what_the_cli_refuses_is_one_object() -> None:
    ran = aifactory("show", "--json", "seven")
    assert ran.returncode == 2
    assert ran.stdout == ""
    error = json.loads(ran.stderr)
    assert error["status"] is None  # no facility answered
    assert error["error"] == "usage"
    assert error["field"] == "JOB_ID"
    assert error["message"].startswith("JOB_ID: ")


def test_an_unreachable_facility_is_one_line_or_one_object() -> None:
    plain = aifactory("jobs")
    assert plain.returncode == 1
    assert plain.stderr.startswith("error: cannot reach the facility at http://127.0.0.1:")
    assert plain.stderr.count("\n") == 1
    error = json.loads(aifactory("jobs", "--json").stderr)
    assert (error["status"], error["error"], error["field"]) == (None, "unreachable", None)


def test_the_facilitys_refusal_is_one_line_or_one_object(server: LiveServer) -> None:
    plain = aifactory("submit", "--gpus", "-1", "--", "true", env=as_admin(server))
    assert plain.returncode == 1
    assert plain.stderr.startswith("error: gpus: ")
    assert plain.stderr.count("\n") == 1
    ran = aifactory("submit", "--json", "--gpus", "-1", "--", "true", env=as_admin(server))
    assert ran.returncode == 1
    assert ran.stdout == ""
    error = json.loads(ran.stderr)
    assert (error["status"], error["error"], error["field"]) == (422, "invalid_input", "gpus")
    assert error["message"] == plain.stderr.removeprefix("error: ").rstrip("\n")


def test_json_after_the_command_separator_is_the_jobs() -> None:
    ran = aifactory("submit", "--", "echo", "--json")
    assert ran.stderr.startswith("error: cannot reach")  # a line, not an object
