"""`aifactory permissions` prints the matrix from the code, asking no facility."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.domain.permissions import MATRIX, Action, Role, as_markdown

NOWHERE = {"AIFACTORY_URL": "http://127.0.0.1:9", "AIFACTORY_TOKEN": "none"}


def test_the_matrix_in_80_columns() -> None:
    result = CliRunner().invoke(app, ["permissions"], env=NOWHERE)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["action", *(r.value[:3] for r in Role)]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1 : 1 + len(Action)]}
    assert rows == {a.value: ["✓" if r in MATRIX[a].roles else "·" for r in Role] for a in Action}
    assert max(len(line) for line in lines) <= 80


def test_markdown_is_the_table_of_docs_permissions_md() -> None:
    result = CliRunner().invoke(app, ["permissions", "--markdown"], env=NOWHERE)

    assert result.exit_code == 0, result.output
    assert result.output == as_markdown()


def test_json_is_the_matrix_as_data() -> None:
    result = CliRunner().invoke(app, ["permissions", "--json"], env=NOWHERE)

    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    rows = {row["action"]: set(row["roles"]) for row in found["actions"]}
    assert rows == {a.value: {r.value for r in MATRIX[a].roles} for a in Action}
    assert set(found["facility_roles"]) | set(found["project_roles"]) == {r.value for r in Role}
