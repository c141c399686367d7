"""`aifactory recipes`: the recipes catalogue, and installing the data the recipes ship with.

`install-data` runs on the facility's own machine, like `admin-token`: it copies the shipped
texts into the facility's data root (`<data root>/facility/<dataset>/v1`), then registers each
as a facility dataset through the API with an admin's token, and may grant projects its use.
Running it again changes nothing that is there already.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag
from aifactory.client import ApiError, Client
from aifactory.recipes import catalogue

app = typer.Typer(help="Recipes: ready-made workloads (aifactory submit --recipe NAME).")
PURPOSE = "llm-training"


@dataclass(frozen=True, slots=True)
class Shipped:
    """A dataset the recipes ship with, and the terms it is registered under."""

    name: str
    licence: str
    description: str


SHIPPED = (
    Shipped(
        "dutch-books",
        "public-domain",
        "Public-domain Dutch books (Project Gutenberg, via GutenbergSource): pretraining text",
    ),
    Shipped(
        "dutch-eval",
        "CC-BY-SA-4.0",
        "Dutch sentences from UD Dutch-Alpino and UD Dutch-LassySmall (CC BY-SA 4.0, "
        "attribution in LICENSE-*.txt): *-test.txt evaluation, *-dev.txt fine-tuning",
    ),
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="recipes")


@app.callback(invoke_without_command=True)
def recipes_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the recipes and their configs (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json:
        print_json(
            {
                "recipes": [
                    {"name": r.name, "kind": r.kind, "about": r.about, "needs_from": r.needs_from}
                    for r in catalogue.RECIPES.values()
                ],
                "configs": [
                    {
                        "name": c.name,
                        "gpus": c.gpus,
                        "cpus": c.cpus,
                        "memory_mb": c.memory_mb,
                        "time_limit_s": c.time_limit_s,
                        "about": c.about,
                    }
                    for c in catalogue.CONFIGS.values()
                ],
                "datasets": list(catalogue.DATASETS),
            }
        )
        return
    table("recipes", ["recipe", "what"], [[r.name, r.about] for r in catalogue.RECIPES.values()])
    table(
        "configs (--config; --gpus, --cpus, --memory-mb, --time-limit override)",
        ["config", "gpus", "cpus", "memory", "time limit", "what"],
        [
            [
                c.name,
                c.gpus,
                c.cpus,
                f"{c.memory_mb // 1024} GB",
                f"{c.time_limit_s // 60} min",
                c.about,
            ]
            for c in catalogue.CONFIGS.values()
        ],
    )
    typer.echo(
        f"datasets they read: {', '.join(catalogue.DATASETS)} (aifactory recipes install-data)"
    )


@app.command("install-data")
def install_data(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="the facility's data dir")] = Path(
        ".aifactory"
    ),
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="the facility's data root (default: DATA_DIR/datasets)"),
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option("--grant", help=f"let this project use them for {PURPOSE!r} (repeatable)"),
    ] = None,
    retention_days: Annotated[int, typer.Option("--retention-days", min=1)] = 3650,
) -> None:
    """Copy the recipes' Dutch texts into the data root and register them (admins; run it on
    the facility's machine). Public data, residency NL."""
    from aifactory.config import Settings

    settings = Settings(data_dir=data_dir, data_root=data_root)
    root = settings.datasets_dir
    until = datetime.now(UTC) + timedelta(days=retention_days)
    with client(ctx) as api:
        for shipped in SHIPPED:
            _install(api, shipped, root, until)
            for project in grant or []:
                _grant(api, shipped.name, project)


def _install(api: Client, shipped: Shipped, root: Path, until: datetime) -> None:
    relative = f"facility/{shipped.name}/v1"
    if _registered(api, shipped.name):
        typer.echo(f"{shipped.name}: registered already")
        return
    target = root / relative
    if not target.exists():  # copied whole or not at all: a crash leaves no half copy
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        source = resources.files("aifactory.recipes").joinpath("data", shipped.name)
        with resources.as_file(source) as found:
            shutil.copytree(found, partial)
        partial.rename(target)
    api.register_dataset(
        shipped.name,
        path=relative,
        classification="public",
        residency="NL",
        retention_until=until,
        licence=shipped.licence,
        controller="the facility",
        processor="the facility",
        purposes=[PURPOSE, "evaluation"],
        description=shipped.description,
    )
    typer.echo(f"{shipped.name}: registered, v1 at {target}")


def _registered(api: Client, name: str) -> bool:
    try:
        api.dataset(name)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _grant(api: Client, name: str, project: str) -> None:
    """Until the data's retention ends (a grant may not outlive it)."""
    found = api.dataset(name)
    if any(g["project"] == project and g["active"] for g in found["grants"]):
        typer.echo(f"{name}: project {project} may use it already")
        return
    until = found["versions"][-1]["retention_until"]
    api.grant_dataset(name, project=project, purpose=PURPOSE, until=until)
    typer.echo(f"{name}: granted to project {project} for {PURPOSE!r}")
