"""`aifactory env` (Python environments) and `aifactory images` (container images).

aifactory env create nlp-torch --project nlp --requirements requirements.txt --wait
aifactory env show nlp-torch --project nlp        # state, packages, the jobs that used it
aifactory images import pytorch.tar --name pytorch:2.3   # admins
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, printable, table, when
from aifactory.cli.units import JsonFlag
from aifactory.client.client import Client

env_app = typer.Typer(help="Python environments: built from a requirements file, read-only.")
images_app = typer.Typer(help="Container images: imported by admins, run by the OCI runtime.")

EnvName = Annotated[str, typer.Argument(help="the environment, e.g. nlp-torch")]
Project = Annotated[
    str | None, typer.Option(help="the project's (default: the facility's, for admins)")
]
SeenIn = Annotated[str | None, typer.Option(help="look in this project first, then the facility's")]
ImageRef = Annotated[str, typer.Argument(help="name[:tag] or sha256:<digest>")]
POLL_S = 1.0


def register(root: typer.Typer) -> None:
    root.add_typer(env_app, name="env")
    root.add_typer(images_app, name="images")


# ---- environments ---------------------------------------------------------------------------


@env_app.command("create")
def env_create(
    ctx: typer.Context,
    name: EnvName,
    requirements: Annotated[
        Path,
        typer.Option(
            "--requirements", "-r", exists=True, dir_okay=False, help="a requirements file"
        ),
    ],
    project: Project = None,
    python: Annotated[
        str | None, typer.Option(help="major.minor, e.g. 3.11 (default: the facility's)")
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="follow the build until it is ready or failed")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build an environment from a requirements file, from the facility's registry, in the
    background. The same requirements give the same build, made once."""
    text = requirements.read_text(encoding="utf-8", errors="replace")
    with client(ctx) as api:
        found = api.create_environment(name, text, project=project, python=python)
        if wait:
            found = _follow_build(api, name, project, quiet=as_json)
    if as_json:
        print_json(found)
        return
    typer.echo(_state_line(found))
    if found["state"] == "failed":
        raise typer.Exit(1)


def _follow_build(api: Client, name: str, project: str | None, *, quiet: bool) -> dict[str, Any]:
    """Until the build ends: its new output lines on stderr as they come."""
    shown = 0
    while True:
        found = api.environment(name, project=project)
        lines = api.environment_log(name, project=project, lines=10_000)["lines"]
        if not quiet:
            for line in lines[shown:]:
                typer.echo(printable(line), err=True)
        shown = len(lines)
        if found["state"] in ("ready", "failed"):
            return found
        time.sleep(POLL_S)


def _state_line(env: dict[str, Any]) -> str:
    where = env["project"] or "the facility"
    said = f"environment {env['name']} ({where}): {env['state']}, key {env['key'][:12]}"
    if env["state"] == "ready":
        took = env.get("build_seconds")
        return f"{said}, {len(env['packages'])} packages" + (
            f", built in {took:.1f} s" if took is not None else ""
        )
    if env["state"] == "failed":
        return f"{said}\n{env.get('error') or ''}".rstrip()
    return said


@env_app.command("list")
def env_list(ctx: typer.Context, project: SeenIn = None, as_json: JsonFlag = False) -> None:
    """The facility's environments and your projects' (or one project's)."""
    with client(ctx) as api:
        found = api.environments(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["name", "project", "state", "python", "packages", "size", "jobs", "key"],
        [
            [
                e["name"],
                e["project"] or "(facility)",
                e["state"],
                e["python_version"] or e["python"],
                len(e["packages"]) if e["state"] == "ready" else None,
                _size(e["size_bytes"]),
                e["jobs"],
                e["key"][:12],
            ]
            for e in found
        ],
        spare=("key", "size"),
    )


@env_app.command("show")
def env_show(
    ctx: typer.Context, name: EnvName, project: SeenIn = None, as_json: JsonFlag = False
) -> None:
    """Its state, its requirements, every package it holds (resolved) and the jobs that ran in
    it; while it builds (or when it failed), pip's last lines."""
    with client(ctx) as api:
        found = api.environment(name, project=project)
        jobs = api.environment_jobs(name, project=project)
        log = api.environment_log(name, project=project)["lines"]
    if as_json:
        print_json({**found, "used_by": jobs, "log": log})
        return
    typer.echo(_state_line(found))
    typer.echo(f"requirements: {', '.join(found['requirements'])}")
    if found["packages"]:
        table(
            "packages",
            ["name", "version", "license"],
            [[p["name"], p["version"], p.get("license")] for p in found["packages"]],
        )
    if found["state"] in ("queued", "building") and log:
        typer.echo("\n".join(printable(line) for line in log[-10:]))
    if jobs:
        table(
            "jobs that used it",
            ["job", "name", "project", "state", "submitted"],
            [[j["id"], j["name"], j["project"], j["state"], when(j["submitted_at"])] for j in jobs],
        )


@env_app.command("log")
def env_log(
    ctx: typer.Context,
    name: EnvName,
    project: SeenIn = None,
    lines: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
) -> None:
    """The build's output: pip's progress, or its error."""
    with client(ctx) as api:
        found = api.environment_log(name, project=project, lines=lines)
    for line in found["lines"]:
        typer.echo(printable(line))


@env_app.command("delete")
def env_delete(ctx: typer.Context, name: EnvName, project: Project = None) -> None:
    """Remove the name; jobs that ran in it keep their record of the build."""
    with client(ctx) as api:
        api.delete_environment(name, project=project)
    typer.echo(f"environment {name} removed")


# ---- images ---------------------------------------------------------------------------------


@images_app.callback(invoke_without_command=True)
def images_list(ctx: typer.Context, project: SeenIn = None, as_json: JsonFlag = False) -> None:
    """The images you may run (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.images(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["name", "project", "digest", "size", "architecture", "jobs", "imported"],
        [
            [
                i["name"],
                i["project"] or "(facility)",
                i["digest"][:19],
                _size(i["size_bytes"]),
                i["architecture"],
                i["jobs"],
                when(i["imported_at"]),
            ]
            for i in found
        ],
        spare=("imported", "architecture", "size"),
    )


@images_app.command("import")
def images_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the image's tar")],
    name: Annotated[
        str | None, typer.Option(help="name[:tag] (default: the names the file carries)")
    ] = None,
    project: Project = None,
    as_json: JsonFlag = False,
) -> None:
    """Import an image from a file: `docker save`, `podman save --format oci-archive`, or an OCI
    image layout as a tar (admins). The facility never pulls images from a registry."""
    with client(ctx) as api:
        found = api.import_image(file, name=name, project=project)
    if as_json:
        print_json(found)
        return
    for image in found:
        typer.echo(f"image {image['name']}: {image['digest']} ({_size(image['size_bytes'])})")


@images_app.command("show")
def images_show(
    ctx: typer.Context, ref: ImageRef, project: SeenIn = None, as_json: JsonFlag = False
) -> None:
    with client(ctx) as api:
        found = api.image(ref, project=project)
    if as_json:
        print_json(found)
        return
    for key in ("name", "digest", "architecture", "working_dir", "imported_by", "jobs"):
        typer.echo(f"{key}: {printable(str(found.get(key)))}")
    typer.echo(f"size: {_size(found['size_bytes'])}")
    typer.echo(f"entrypoint: {' '.join(found['entrypoint']) or '-'}")
    typer.echo(f"env: {', '.join(found['env']) or '-'}")


@images_app.command("remove")
def images_remove(ctx: typer.Context, ref: ImageRef, project: Project = None) -> None:
    """Remove the name (admins); jobs that ran in the image keep its digest."""
    with client(ctx) as api:
        api.remove_image(ref, project=project)
    typer.echo(f"image {ref} removed")


def _size(count: int | None) -> str | None:
    if count is None:
        return None
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count = count / 1024  # type: ignore[assignment]
    return None
