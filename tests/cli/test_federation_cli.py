"""`aifactory federation` against the real API (uvicorn in a thread over a fresh SQLite
database), in-process with typer's CliRunner: import a file twice (a dry run first), list the
imports, export usage as CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.store.db import Database
from tests.conftest import LiveServer
from tests.domain.test_federation import RECORD, as_csv


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(server: LiveServer, *args: str) -> str:
    target = ["--url", server.url, "--token", server.admin_token]
    result = CliRunner().invoke(app, [*target, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def test_import_a_file_twice_then_export_its_usage(live_server: LiveServer, tmp_path: Path) -> None:
    awards = tmp_path / "awards.csv"
    awards.write_text(as_csv(RECORD))

    tried = run(live_server, "federation", "import", str(awards), "--dry-run")
    first = json.loads(run(live_server, "federation", "import", str(awards), "--json"))
    again = run(live_server, "federation", "import", str(awards), "--format", "csv")
    imports = run(live_server, "federation", "imports")
    usage = run(
        live_server, "federation", "export", "--from", "2026-01-01", "--to", "2026-02-01",
        "--format", "csv",
    )  # fmt: skip

    assert "dry run, nothing kept: 1 created" in tried
    assert (first["created"], first["records"][0]["project"]) == (1, "protein-folding")
    assert "0 created, 0 updated, 1 unchanged, 0 refused" in again
    assert imports.count("awards.csv") == 2
    assert usage.splitlines()[0].startswith("award_id,project_id,project,allocation")


def test_a_file_of_unknown_format_asks_for_format(live_server: LiveServer, tmp_path: Path) -> None:
    awards = tmp_path / "awards.txt"
    awards.write_text(json.dumps([RECORD]))
    target = ["--url", live_server.url, "--token", live_server.admin_token]

    result = CliRunner().invoke(app, [*target, "federation", "import", str(awards)])

    assert result.exit_code != 0
    assert "--format" in result.output
