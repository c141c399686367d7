"""The client every command uses, made from the global --url/--token options."""

from __future__ import annotations

import typer

from aifactory.cli.config import resolve
from aifactory.client import Client


def client(ctx: typer.Context) -> Client:
    obj = ctx.find_root().obj or {}
    target = resolve(obj.get("url"), obj.get("token"))
    return Client(target.url, target.token)
