"""`aifactory datasets`: register datasets and versions, grant and revoke their use."""

from __future__ import annotations

import typer

app = typer.Typer(help="Datasets: registry, versions, grants.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="datasets")
