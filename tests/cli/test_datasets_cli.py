"""`aifactory datasets` against the real API (uvicorn in a thread over a fresh SQLite database,
a real data root), run in-process with typer's CliRunner, as the bootstrapped admin: the
project `default` is theirs, its data in its area of the root (`<root>/default/`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.datasets import size
from aifactory.cli.main import app
from aifactory.client import ApiError
from aifactory.store.db import Database
from tests.conftest import LiveServer

REGISTER = [
    "--controller",
    "UvA",
    "--processor",
    "AI Factory NL",
    "--classification",
    "personal",
    "--legal-basis",
    "public_task",
    "--purpose",
    "llm-training",
    "--purpose",
    "evaluation",
    "--residency",
    "NL",
    "--licence",
    "CC-BY-4.0",
]


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the commands; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def root(live_server: LiveServer) -> Path:
    assert live_server.state.data_root is not None
    for name in ["books", "books-v2"]:  # in the area of project default
        (live_server.state.data_root / "default" / name).mkdir(parents=True)
        (live_server.state.data_root / "default" / name / "a.txt").write_text("hallo wereld\n")
    (live_server.state.data_root / "open.txt").write_text("open\n")
    return live_server.state.data_root


def run(server: LiveServer, *args: str) -> Result:
    target = ["--url", server.url, "--token", server.admin_token]
    return CliRunner().invoke(app, [*target, "datasets", *args], env={"COLUMNS": "250"})


def ok(server: LiveServer, *args: str) -> str:
    result = run(server, *args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def as_json(server: LiveServer, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json"))


def test_register_list_show_version_grant_and_revoke(live_server: LiveServer, root: Path) -> None:
    said = ok(
        live_server, "register", "nl-books", "--path", "books", "--project", "default",
        "--retention-days", "365", *REGISTER,
    )  # fmt: skip
    assert said.startswith("dataset nl-books registered: version 1, 13 B, sha256 ")
    listed = ok(live_server)
    for cell in ["nl-books", "default", "personal", "NL", "13 B"]:
        assert cell in listed, cell
    version = as_json(
        live_server, "add-version", "nl-books", "--path", "books-v2", "--retain-until", "2999-01-01"
    )
    assert (version["version"], version["legal_basis"], version["retention_until"]) == (
        2,
        "public_task",
        "2999-01-01T00:00:00Z",
    )
    shown = as_json(live_server, "show", "nl-books")
    assert [v["version"] for v in shown["versions"]] == [1, 2]

    # Only the facility's own `default` project exists besides: a facility dataset for it.
    ok(
        live_server, "register", "open-web", "--path", "open.txt", "--retain-until",
        "2999-01-01", *REGISTER,
    )  # fmt: skip
    grant = as_json(
        live_server, "grant", "open-web", "--project", "default", "--purpose", "evaluation",
        "--until", "2998-01-01",
    )  # fmt: skip
    assert (grant["project"], grant["active"]) == ("default", True)
    assert "grants" in ok(live_server, "show", "open-web")
    gone = ok(live_server, "revoke", "open-web", str(grant["id"]), "--reason", "study ended")
    assert gone == f"grant {grant['id']} on open-web revoked: default may no longer use it\n"


def test_bad_terms_and_missing_retention_are_refused(live_server: LiveServer, root: Path) -> None:
    refused = run(
        live_server, "register", "nl-books", "--path", "default/books", "--retention-days", "30",
        *REGISTER[:7], "because", *REGISTER[8:],
    )  # fmt: skip
    assert isinstance(refused.exception, ApiError)
    assert refused.exception.status == 422
    assert refused.exception.errors[0]["field"] == "legal_basis"
    missing = run(live_server, "register", "nl-books", "--path", "default/books", *REGISTER)
    assert missing.exit_code == 2
    assert "--retention-days or --retain-until" in missing.output
    both = run(
        live_server, "register", "nl-books", "--path", "default/books", "--retention-days", "3",
        "--retain-until", "2999-01-01", *REGISTER,
    )  # fmt: skip
    assert both.exit_code == 2
    assert "not both" in both.output


def test_sizes_read_in_powers_of_a_thousand() -> None:
    assert [size(n) for n in (0, 999, 1000, 4_200, 1_500_000_000, 3 * 10**15)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "4.2 kB",
        "1.5 GB",
        "3.0 PB",
    ]
