"""`aifactory erasures`, `aifactory processing-records`, `aifactory project export|close`:
the GDPR workflows.

Erasures and closures are carried out by the facility's control loop: a request prints the
erasure (or closure) as recorded; `erasures show ID` / `project closure NAME` follow it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.tenancy import project_app
from aifactory.cli.units import JsonFlag, minute, note

app = typer.Typer(help="Erasures of dataset versions (GDPR Art. 17): reports and certificates.")

Reason = Annotated[str, typer.Option(help="why, for the report and the audit log")]
StopJobs = Annotated[
    bool,
    typer.Option(
        "--stop-running-jobs",
        help="cancel the active jobs in the way (else refused while any is active)",
    ),
]
OutFile = Annotated[Path, typer.Option("--out", dir_okay=False, help="write it here")]


def register(root: typer.Typer) -> None:
    """Adds the GDPR commands to the root app."""
    root.add_typer(app, name="erasures")
    root.command("processing-records")(processing_records)
    project_app.command("export")(project_export)
    project_app.command("close")(project_close)
    project_app.command("closure")(project_closure)


# ---- erasures ---------------------------------------------------------------------------------


@app.callback(invoke_without_command=True)
def erasures_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="recorded, erasing or done")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List the erasures you may see, newest first (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.erasures(state=state, limit=limit)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "dataset", "version", "trigger", "state", "requested", "by", "done"],
        [
            [
                e["id"],
                e["dataset"],
                e["version"],
                e["trigger"],
                e["state"],
                minute(e["requested_at"]),
                e["requested_by"],
                minute(e["completed_at"]),
            ]
            for e in found
        ],
        spare=("by", "requested"),
    )


@app.command("request")
def erasure_request(
    ctx: typer.Context,
    dataset: str,
    version: int,
    reason: Reason,
    stop_running_jobs: StopJobs = False,
    as_json: JsonFlag = False,
) -> None:
    """Ask for DATASET's VERSION to be erased (owners of its project, admins)."""
    with client(ctx) as api:
        found = api.request_erasure(
            dataset, version, reason=reason, stop_running_jobs=stop_running_jobs
        )
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"erasure {found['id']} of {found['dataset']} version {found['version']} recorded; "
        f"follow it with: aifactory erasures show {found['id']}"
    )


@app.command("show")
def erasure_show(ctx: typer.Context, erasure_id: int, as_json: JsonFlag = False) -> None:
    """An erasure, and once done what its report says: the data, and the jobs that used it."""
    with client(ctx) as api:
        found = api.erasure(erasure_id)
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"erasure {found['id']}: {found['dataset']} version {found['version']}, "
        f"{found['trigger']}, {found['state']}"
    )
    typer.echo(f"requested by {found['requested_by']} at {minute(found['requested_at'])}")
    typer.echo(f"reason: {found['reason']}")
    if found["active_jobs"]:
        jobs = ", ".join(str(j) for j in found["active_jobs"])
        typer.echo(f"waiting for active jobs to stop: {jobs}")
    report = found["report"]
    if report is None:
        return
    typer.echo(f"erased at {minute(found['completed_at'])}; SHA-256 {report['version']['sha256']}")
    _report_jobs(report)


def _report_jobs(report: dict[str, Any]) -> None:
    rows = []
    for job in report["jobs"]:
        kept = [a["path"] for a in job["artefacts"] if a["exists"]]
        rows.append([job["id"], job["project"], job["user"], job["state"], "\n".join(kept) or "-"])
    table("jobs that used it", ["job", "project", "user", "state", "artefacts"], rows)


@app.command("certificate")
def erasure_certificate(ctx: typer.Context, erasure_id: int, out: OutFile) -> None:
    """Save the certificate (PDF) of a done erasure."""
    with client(ctx) as api:
        out.write_bytes(api.erasure_certificate(erasure_id))
    typer.echo(f"wrote {out}")


# ---- records of processing --------------------------------------------------------------------


def processing_records(
    ctx: typer.Context,
    controller: Annotated[str | None, typer.Option(help="only this controller's")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
    out: Annotated[Path | None, typer.Option(dir_okay=False, help="write it here")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Records of processing activities (GDPR Art. 30), one per dataset (admins, auditors)."""
    with client(ctx) as api:
        if csv:
            text = api.processing_records_csv(controller=controller).decode()
        else:
            document = api.processing_records(controller=controller)
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is not None:
        out.write_text(text)
        note(f"wrote {out}", as_json=as_json)
    elif csv or as_json:
        typer.echo(text, nl=False)
    else:
        _records_table(document["records"])


def _records_table(found: list[dict[str, Any]]) -> None:
    table(
        None,
        ["dataset", "controller", "categories", "legal basis", "recipients", "countries", "until"],
        [
            [
                r["dataset"],
                r["controller"],
                ", ".join(r["categories"]),
                ", ".join(r["legal_bases"]) or "-",
                ", ".join(r["recipients"]) or "-",
                ", ".join(r["countries_processed"]) or "-",
                (r["retention_until"] or "-")[:10],
            ]
            for r in found
        ],
        spare=("legal basis", "recipients"),
    )


# ---- projects: export and closure -------------------------------------------------------------


def project_export(ctx: typer.Context, project: str, out: OutFile) -> None:
    """Save all of PROJECT's data as one ZIP (owners, admins)."""
    with client(ctx) as api:
        data = api.export_project(project)
    out.write_bytes(data)
    typer.echo(f"wrote {out} ({len(data)} bytes)")


def project_close(
    ctx: typer.Context,
    project: str,
    reason: Reason,
    stop_running_jobs: StopJobs = False,
    as_json: JsonFlag = False,
) -> None:
    """Close PROJECT for good (admins): revoke its grants, erase its datasets, remove its job
    directories, then issue a certificate."""
    with client(ctx) as api:
        found = api.close_project(project, reason=reason, stop_running_jobs=stop_running_jobs)
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"project {found['project']} is {found['state']}; "
        f"follow it with: aifactory project closure {found['project']}"
    )


def project_closure(
    ctx: typer.Context,
    project: str,
    certificate: Annotated[
        Path | None, typer.Option(dir_okay=False, help="save the certificate (PDF) here")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """PROJECT's closure: closing, or closed with its report (and certificate)."""
    with client(ctx) as api:
        found = api.closure(project)
        if certificate is not None:
            certificate.write_bytes(api.closure_certificate(project))
    if as_json:
        print_json(found)
    else:
        typer.echo(
            f"project {found['project']}: {found['state']} (asked by {found['requested_by']} "
            f"at {minute(found['requested_at'])}; closed {minute(found['completed_at'])})"
        )
        typer.echo(f"reason: {found['reason']}")
    if certificate is not None:
        note(f"wrote {certificate}", as_json=as_json)
