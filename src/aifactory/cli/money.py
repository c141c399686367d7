"""Usage, invoice and funder-report commands: what was used, what it costs, what was delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.eff import eff
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import (
    JOULES_PER_KWH,
    From,
    JsonFlag,
    MaybeFrom,
    MaybeTo,
    To,
    co2,
    energy,
    hours,
    minute,
    note,
)
from aifactory.client import ApiError, Client
from aifactory.client.accounting import CHARTS


def register(app: typer.Typer) -> None:
    app.command("usage")(show_usage)
    app.command("invoice")(invoice)
    app.command("report")(report)


def show_usage(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    start: MaybeFrom = None,
    end: MaybeTo = None,
    least_efficient: Annotated[
        int | None,
        typer.Option(
            "--least-efficient",
            help="instead: the project's N finished jobs that wasted most of what they asked "
            "(as aifactory eff --project P --worst N)",
            min=1,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Usage that ended in [--from, --to): GPU time, energy and cost, with totals."""
    if least_efficient is not None:
        if project is None:
            raise typer.BadParameter("--least-efficient needs --project")
        eff(ctx, project=project, worst=least_efficient, as_json=as_json)
        return
    with client(ctx) as api:
        found = api.usage(project=project, start=start, end=end)
    if as_json:
        print_json(found)
        return
    records, totals = found["records"], found["totals"]
    if records:
        _usage_table(records)
    shown = "" if len(records) == totals["records"] else f" (showing {len(records)})"
    typer.echo(
        f"total: {totals['records']} record(s){shown}, {hours(totals['gpu_hours'])} GPU-h, "
        f"{energy(totals['energy_j'] / JOULES_PER_KWH)}, {co2(totals['co2_g'])}; "
        f"cost € {totals['cost']}, subsidy € {totals['subsidy']}, net € {totals['net']}"
    )
    tokens, asked = found["tokens"], found["token_totals"]
    if asked["requests"]:
        _tokens_table(tokens)
        typer.echo(
            f"tokens: {asked['requests']} request(s), {asked['prompt_tokens']} prompt + "
            f"{asked['completion_tokens']} completion tokens; cost € {asked['cost_exact']}, "
            f"subsidy € {asked['subsidy']}, net € {asked['net']}"
        )


def _tokens_table(rows: list[dict[str, Any]]) -> None:
    table(
        None,
        ["model", "key", "project", "requests", "prompt tok", "completion tok", "net €"],
        [
            [
                r["model"],
                r["key"],
                r["project"],
                r["requests"],
                r["prompt_tokens"],
                r["completion_tokens"],
                r["net"],
            ]
            for r in rows
        ],
    )


def _usage_table(records: list[dict[str, Any]]) -> None:
    table(
        None,
        ["job", "project", "programme", "GPUs", "ended", "GPU-h", "kWh", "net €"],
        [
            [
                f"{r['job_id']}.{r['attempt']}",
                r["project"],
                r["programme"],
                r["gpus"],
                minute(r["ended_at"]),
                hours(r["gpu_hours"]),
                _kwh(r["energy_j"]),
                r["net"],
            ]
            for r in records
        ],
        spare=("programme",),
    )


def _kwh(joules: float) -> str:
    """kWh to the Wh, as a column of them reads best; a little energy is <0.001, not 0."""
    shown = f"{joules / JOULES_PER_KWH:,.3f}"
    return "<0.001" if joules and shown == "0.000" else shown


def invoice(
    ctx: typer.Context,
    project: str,
    month: Annotated[str, typer.Argument(help="YYYY-MM, a month that has ended (UTC)")],
    pdf: Annotated[Path | None, typer.Option(help="write the PDF here", dir_okay=False)] = None,
    csv: Annotated[Path | None, typer.Option(help="write the CSV here", dir_okay=False)] = None,
    as_json: JsonFlag = False,
) -> None:
    """The project's invoice for MONTH: as issued, or issued now if it was not yet (finance)."""
    with client(ctx) as api:
        issued = _issued_or_issue(api, project, month)
        if pdf is not None:
            pdf.write_bytes(api.invoice_pdf(project, month))
        if csv is not None:
            csv.write_bytes(api.invoice_csv(project, month))
    if as_json:
        print_json(issued)
    else:
        _print_invoice(issued)
    for path in (pdf, csv):
        if path is not None:
            note(f"wrote {path}", as_json=as_json)


def _issued_or_issue(api: Client, project: str, month: str) -> dict[str, Any]:
    """Read it first: members read invoices, finance and admins issue them."""
    try:
        return api.invoice(project, month)
    except ApiError as exc:
        if exc.status != 404 or [e["field"] for e in exc.errors] != ["month"]:
            raise
    return api.issue_invoice(project, month)


def _print_invoice(inv: dict[str, Any]) -> None:
    typer.echo(
        f"invoice {inv['number']}: project {inv['project']}, {inv['month']} "
        f"(issued {minute(inv['issued_at'])} by {inv['issued_by']})"
    )
    if not inv["lines"]:
        typer.echo("no charges")
    else:
        table(
            None,
            ["description", "quantity", "unit", "unit price", f"amount {inv['currency']}"],
            [
                [x["description"], x["quantity"], x["unit"], x["unit_price"], x["amount"]]
                for x in inv["lines"]
            ],
        )
    typer.echo(
        f"gross {inv['gross']}, subsidy {inv['subsidy']}, net {inv['net']}, "
        f"VAT {inv['vat_pct']}% {inv['vat']}, total {inv['currency']} {inv['total']}"
    )


def report(
    ctx: typer.Context,
    start: From,
    end: To,
    out: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="write report.json, report.csv and the charts (PNG) here"
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The funder report: what the facility delivered in [--from, --to), and to whom."""
    with client(ctx) as api:
        figures = api.funder_report(start=start, end=end)
        if out is not None:
            _write_report(api, out, figures, start=start, end=end)
    if as_json:
        print_json(figures)
    else:
        _print_report(figures)
    if out is not None:
        note(f"wrote report.json, report.csv and {len(CHARTS)} charts to {out}", as_json=as_json)


def _write_report(api: Client, out: Path, figures: dict[str, Any], *, start: str, end: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    (out / "report.csv").write_bytes(api.funder_report_csv(start=start, end=end))
    for chart in CHARTS:
        (out / f"{chart}.png").write_bytes(api.funder_chart(chart, start=start, end=end))


def _print_report(r: dict[str, Any]) -> None:
    period = r["period"]
    typer.echo(f"funder report {period['start']} to {period['end']}")
    typer.echo(
        f"  {r['jobs']} job(s) for {r['projects_served']} project(s) of "
        f"{r['organisations_served']} organisation(s)"
    )
    typer.echo(
        f"  {hours(r['gpu_hours_total'])} GPU-h delivered, utilisation {r['utilisation']:.1%}"
    )
    typer.echo(
        f"  energy {energy(r['energy_kwh_measured'])} measured + "
        f"{energy(r['energy_kwh_modelled'])} modelled, {co2(r['co2_kg'] * 1000)}"
    )
    by_programme, shares = r["gpu_hours_by_programme"], r["pool_share"]
    waits = r["wait_by_programme"]
    names = sorted({*by_programme, *shares, *waits})
    table(
        "by programme",
        [
            "programme",
            "GPU-h",
            "delivered share",
            "promised share",
            "jobs started",
            "avg wait",
            "p95 wait",
        ],
        [
            [
                name,
                hours(by_programme.get(name, 0.0)),
                _share(shares.get(name), "delivered"),
                _share(shares.get(name), "promised"),
                waits[name]["jobs"] if name in waits else 0,
                _minutes(waits.get(name), "avg_s"),
                _minutes(waits.get(name), "p95_s"),
            ]
            for name in names
        ],
    )
    if r["gpu_hours_by_org_kind"]:
        table(
            "by organisation kind",
            ["kind", "GPU-h"],
            [[k, hours(v)] for k, v in r["gpu_hours_by_org_kind"].items()],
        )
    if r.get("gpu_hours_by_funding"):
        table(
            "by funding (EU-call vs national-call)",
            ["funding", "GPU-h"],
            [[k, hours(v)] for k, v in r["gpu_hours_by_funding"].items()],
        )
    if r.get("time_to_access"):
        table(
            "time to access by access mode",
            ["mode", "service level", "proposals", "within", "median"],
            [
                [
                    mode.replace("_", " "),
                    f"{t['service_working_days']} working days",
                    t["proposals"],
                    f"{t['within']} ({t['share_within']:.0%})",
                    f"{t['median_working_days']:g} working days",
                ]
                for mode, t in r["time_to_access"].items()
            ],
        )


def _share(share: dict[str, float] | None, key: str) -> str:
    return "-" if share is None else f"{share[key]:.1%}"


def _minutes(wait: dict[str, float] | None, key: str) -> str:
    return "-" if wait is None else f"{wait[key] / 60:.1f} min"
