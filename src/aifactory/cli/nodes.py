"""`aifactory nodes`: the facility's nodes with why each is drained and what its health check
found; `drain` and `resume` (operators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag

nodes_app = typer.Typer(
    help="Nodes: drain one before a repair, resume it after; health checks drain failing ones.",
    invoke_without_command=True,
)
NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="the node's id")]


def register(app: typer.Typer) -> None:
    app.add_typer(nodes_app, name="nodes")


@nodes_app.callback()
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every node: its GPUs, whether it takes work, and why not."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.nodes()
    if as_json:
        print_json(found)
        return
    blocks = any(n.get("block") for n in found)  # shown where a topology is declared
    block = ["block"] if blocks else []
    table(
        "nodes",
        ["id", "site", *block, "gpus", "model", "state", "since", "health", "reason"],
        [
            [
                n["id"],
                n["site"],
                *([n.get("block")] if blocks else []),
                n["gpus"],
                n["gpu_model"],
                state_of(n),
                _since(n["drained_at"]),
                "failing" if n["health_problem"] else "ok" if n["health_checked_at"] else None,
                drain_text(n),
            ]
            for n in found
        ],
        spare=["site", "model", "since", "health", "block"],
        last_wraps_to=40,
    )


@nodes_app.command()
def drain(
    ctx: typer.Context,
    node: NodeArg,
    reason: Annotated[str, typer.Option(help="why: shown wherever the node is shown")],
    as_json: JsonFlag = False,
) -> None:
    """Take a node out of service: running jobs finish, nothing new starts there."""
    with client(ctx) as api:
        found = api.drain_node(node, reason=reason)
    if as_json:
        print_json(found)
        return
    typer.echo(f"node {found['id']} drained: {drain_text(found)}")


@nodes_app.command()
def resume(ctx: typer.Context, node: NodeArg, as_json: JsonFlag = False) -> None:
    """Put a drained node back in service."""
    with client(ctx) as api:
        found = api.resume_node(node)
    if as_json:
        print_json(found)
        return
    typer.echo(f"node {found['id']} resumed: {state_of(found)}")


def state_of(node: dict[str, Any]) -> str:
    if node["drained_at"] is not None:
        return "drained"
    return "up" if node["schedulable"] else "not offered"


def drain_text(node: dict[str, Any]) -> str | None:
    """`disk full (by health)`: the drain's reason and who drained it; else a failing check's
    problem (a node an operator drained keeps the operator's reason first)."""
    if node["drained_at"] is None:
        problem: str | None = node["health_problem"]
        return problem
    return f"{node['drain_reason']} (by {node['drained_by']})"


def _since(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")
