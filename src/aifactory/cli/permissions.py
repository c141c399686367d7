"""`aifactory permissions`: the permission matrix (domain.permissions), printed from this
installation's own copy: no facility is asked. `--markdown` prints the table docs/permissions.md
holds, with what each action is.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aifactory.cli.formats import print_json
from aifactory.cli.units import JsonFlag
from aifactory.domain.permissions import FACILITY_ROLES, MATRIX, Action, Role, as_markdown


def register(root: typer.Typer) -> None:
    root.command("permissions")(permissions)


def permissions(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="as the Markdown table of docs/permissions.md")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Which role may do which action: facility roles everywhere, project roles in their project."""
    if as_json:
        print_json(as_data())
        return
    typer.echo(as_markdown() if markdown else as_text(), nl=False)


def as_data() -> dict[str, Any]:
    """The matrix as data: each action, what it is, and the roles that may do it."""
    return {
        "facility_roles": [r.value for r in Role if r in FACILITY_ROLES],
        "project_roles": [r.value for r in Role if r not in FACILITY_ROLES],
        "actions": [
            {
                "action": action.value,
                "what": MATRIX[action].why,
                "roles": [r.value for r in Role if r in MATRIX[action].roles],
            }
            for action in Action
        ],
    }


def as_text() -> str:
    """The matrix in 80 columns: one row per action, a ✓ under each role that may do it."""
    width = max(len(action.value) for action in Action)
    head = "action".ljust(width) + "".join(f" {r.value[:3]}" for r in Role)
    rows = [
        action.value.ljust(width)
        + "".join(f"  {'✓' if r in MATRIX[action].roles else '·'} " for r in Role)
        for action in Action
    ]
    facility = ", ".join(r.value for r in Role if r in FACILITY_ROLES)
    project = ", ".join(r.value for r in Role if r not in FACILITY_ROLES)
    legend = [
        f"facility roles (everywhere): {facility}",
        f"project roles (in their project): {project}",
        "what each action is: aifactory permissions --markdown",
    ]
    return "\n".join([head, *(row.rstrip() for row in rows), "", *legend]) + "\n"
