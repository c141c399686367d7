"""`aifactory datasets`: register datasets and versions, grant and revoke their use.

With no subcommand it lists the datasets you may see. Dates as cli.units reads them
(YYYY-MM-DD is midnight UTC); a retention may also be given in days from now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import JsonFlag, day, minute, when_option

app = typer.Typer(help="Datasets: registry, versions, grants.")

Name = Annotated[str, typer.Argument(help="the dataset, e.g. nl-books")]
DataPath = Annotated[
    str,
    typer.Option(
        "--path",
        help="relative to <data root>/<project>/ (facility datasets: to the data root)",
    ),
]
_CLASSES = "public, internal, personal or special_category"
_RESIDENCIES = "where it may be processed: NL, EU or ANY"
_LICENCE = "e.g. CC-BY-4.0"
Classification = Annotated[str | None, typer.Option(help=_CLASSES)]
LegalBasis = Annotated[
    str | None,
    typer.Option("--legal-basis", help="GDPR Art. 6(1): consent, contract, public_task…"),
]
Condition = Annotated[
    str | None,
    typer.Option("--special-condition", help="GDPR Art. 9(2), for special categories"),
]
Dpia = Annotated[str | None, typer.Option("--dpia-ref", help="the DPIA, for special categories")]
Purposes = Annotated[
    list[str] | None, typer.Option("--purpose", help="what it may be used for (repeatable)")
]
Residency = Annotated[str | None, typer.Option(help=_RESIDENCIES)]
RetentionDays = Annotated[
    int | None, typer.Option("--retention-days", min=1, help="kept this many days from now")
]
RetainUntil = Annotated[
    str | None, when_option("--retain-until", "erased by: YYYY-MM-DD (UTC) or ISO 8601")
]
Licence = Annotated[str | None, typer.Option(help=_LICENCE)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="datasets")


@app.callback(invoke_without_command=True)
def datasets_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the datasets you may see (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.datasets()
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["name", "project", "class", "residency", "versions", "size", "retain until", "grants"],
        [_row(d) for d in found],
        spare=("grants", "versions"),
    )


def _row(dataset: dict[str, Any]) -> list[Any]:
    newest = dataset["versions"][-1] if dataset["versions"] else {}
    return [
        dataset["name"],
        dataset["project"] or "(facility)",
        newest.get("classification"),
        newest.get("residency"),
        len(dataset["versions"]),
        size(newest["size_bytes"]) if newest else None,
        day(newest.get("retention_until")),
        sum(1 for g in dataset["grants"] if g["active"]),
    ]


@app.command("show")
def dataset_show(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """A dataset: who controls it, its versions with their terms, and its grants."""
    with client(ctx) as api:
        found = api.dataset(name)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['name']}  project: {found['project'] or '(facility)'}")
    typer.echo(f"controller: {found['controller']}  processor: {found['processor']}")
    if found["description"]:
        typer.echo(found["description"])
    table(
        "versions",
        _VERSION_COLUMNS,
        [_version_row(v) for v in found["versions"]],
        spare=("files", "licence", "purposes", "basis"),
        last_wraps_to=24,
    )
    if found["grants"]:
        table("grants", _GRANT_COLUMNS, [_grant_row(g) for g in found["grants"]])
    else:
        typer.echo("no grants")


_VERSION_COLUMNS = [
    "version",
    "state",
    "size",
    "files",
    "sha256",
    "class",
    "basis",
    "purposes",
    "residency",
    "retain until",
    "licence",
    "path",
]
_GRANT_COLUMNS = ["id", "project", "purpose", "until", "active", "granted by", "revoked"]


def _version_row(v: dict[str, Any]) -> list[Any]:
    basis = " + ".join(x for x in (v["legal_basis"], v["special_condition"]) if x) or None
    return [
        v["version"],
        v["state"],
        size(v["size_bytes"]),
        v["files"],
        v["sha256"][:12],
        v["classification"],
        basis,
        ", ".join(v["purposes"]) or None,
        v["residency"],
        day(v["retention_until"]),
        v["licence"],
        v["path"],
    ]


def _grant_row(g: dict[str, Any]) -> list[Any]:
    revoked = f"{minute(g['revoked_at'])} {g['revoke_reason']}" if g["revoked_at"] else None
    return [
        g["id"],
        g["project"],
        g["purpose"],
        day(g["until"]),
        "yes" if g["active"] else "no",
        g["granted_by"],
        revoked,
    ]


@app.command("register")
def dataset_register(
    ctx: typer.Context,
    name: Name,
    path: DataPath,
    controller: Annotated[str, typer.Option(help="who decides why and how (GDPR Art. 4(7))")],
    processor: Annotated[str, typer.Option(help="who processes it for them (Art. 4(8))")],
    classification: Annotated[str, typer.Option(help=_CLASSES)],
    residency: Annotated[str, typer.Option(help=_RESIDENCIES)],
    licence: Annotated[str, typer.Option(help=_LICENCE)],
    legal_basis: LegalBasis = None,
    special_condition: Condition = None,
    dpia_ref: Dpia = None,
    purposes: Purposes = None,
    retention_days: RetentionDays = None,
    retain_until: RetainUntil = None,
    project: Annotated[
        str | None, typer.Option(help="the owner project; none: a facility dataset (admins)")
    ] = None,
    description: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register a dataset with its first version (the data is made read-only and hashed)."""
    retention = _retention(retention_days, retain_until)
    if retention is None:
        raise typer.BadParameter("give --retention-days or --retain-until")
    with client(ctx) as api:
        found = api.register_dataset(
            name,
            path=path,
            classification=classification,
            legal_basis=legal_basis,
            special_condition=special_condition,
            dpia_ref=dpia_ref,
            purposes=purposes or (),
            residency=residency,
            retention_until=retention,
            licence=licence,
            controller=controller,
            processor=processor,
            project=project,
            description=description,
        )
    if as_json:
        print_json(found)
        return
    v = found["versions"][0]
    typer.echo(
        f"dataset {name} registered: version 1, {size(v['size_bytes'])}, sha256 {v['sha256']}"
    )


@app.command("add-version")
def dataset_add_version(
    ctx: typer.Context,
    name: Name,
    path: DataPath,
    classification: Classification = None,
    legal_basis: LegalBasis = None,
    special_condition: Condition = None,
    dpia_ref: Dpia = None,
    purposes: Purposes = None,
    residency: Residency = None,
    retention_days: RetentionDays = None,
    retain_until: RetainUntil = None,
    licence: Licence = None,
    as_json: JsonFlag = False,
) -> None:
    """A new version; the terms not given stay as the newest version's."""
    changes = {
        "classification": classification,
        "legal_basis": legal_basis,
        "special_condition": special_condition,
        "dpia_ref": dpia_ref,
        "purposes": purposes or None,
        "residency": residency,
        "retention_until": _retention(retention_days, retain_until),
        "licence": licence,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    with client(ctx) as api:
        v = api.add_dataset_version(name, path=path, **given)
    if as_json:
        print_json(v)
        return
    typer.echo(
        f"dataset {name}: version {v['version']} added, {size(v['size_bytes'])}, {v['sha256']}"
    )


@app.command("grant")
def dataset_grant(
    ctx: typer.Context,
    name: Name,
    project: Annotated[str, typer.Option(help="the project granted use")],
    purpose: Annotated[str, typer.Option(help="for personal data: one of its purposes")],
    until: Annotated[str, when_option("--until", "ends: YYYY-MM-DD (UTC) or ISO 8601")],
    as_json: JsonFlag = False,
) -> None:
    """Let a project use the dataset for a purpose until a date (within its retention)."""
    with client(ctx) as api:
        g = api.grant_dataset(name, project=project, purpose=purpose, until=until)
    if as_json:
        print_json(g)
        return
    typer.echo(f"grant {g['id']}: {project} may use {name} for {purpose} until {day(g['until'])}")


@app.command("revoke")
def dataset_revoke(
    ctx: typer.Context,
    name: Name,
    grant_id: Annotated[int, typer.Argument(help="the grant's id (datasets show NAME)")],
    reason: Annotated[str, typer.Option(help="why it ends now")],
    as_json: JsonFlag = False,
) -> None:
    """End a grant now, saying why."""
    with client(ctx) as api:
        g = api.revoke_dataset_grant(name, grant_id, reason=reason)
    if as_json:
        print_json(g)
        return
    typer.echo(f"grant {grant_id} on {name} revoked: {g['project']} may no longer use it")


def _retention(days: int | None, until: str | None) -> str | None:
    if days is not None and until is not None:
        raise typer.BadParameter("give --retention-days or --retain-until, not both")
    if days is not None:
        return (datetime.now(UTC) + timedelta(days=days)).isoformat()
    return until


def size(count: int) -> str:
    """Bytes for reading, in powers of 1000: 812 B, 4.2 kB, 1.5 GB."""
    value, unit = float(count), "B"
    for bigger in ("kB", "MB", "GB", "TB", "PB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
