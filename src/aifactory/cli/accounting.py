"""Accounting commands: programmes, calls and allocations here; proposals in cli.proposals;
usage, invoices and the funder report in cli.money. A group with subcommands lists when given
none: `aifactory allocations --project p`. Dates and GPU-hours as cli.units reads and shows them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli import money, proposals
from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import From, JsonFlag, To, day, hours, minute, when_option

# What `programmes --json` shows but a programme file may not set.
_READ_ONLY = ("name", "created_at")
# The one organisation kind too long for its table cell, shortened there (not in --json).
_KINDS = {"research_institute": "institute"}

programmes_app = typer.Typer(help="Access programmes: who may apply, tariffs, subsidy, shares.")
calls_app = typer.Typer(help="Calls for proposals under a programme, with a GPU-hour budget.")
allocations_app = typer.Typer(help="Allocations: GPU-hours a project may use, and their ledger.")


def register(app: typer.Typer) -> None:
    app.add_typer(programmes_app, name="programmes")
    app.add_typer(calls_app, name="calls")
    app.add_typer(proposals.app, name="proposals")
    app.add_typer(allocations_app, name="allocations")
    money.register(app)


# ---- programmes ------------------------------------------------------------------------------


@programmes_app.callback(invoke_without_command=True)
def programmes_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the programmes (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.programmes()
    if as_json:
        print_json(found)
        return
    table(
        None,
        [
            "name",
            "€/GPU-h",
            "€/M tokens\nin/out",
            "subsidy",
            "prio",
            "preempt",
            "max\nGPUs",
            "share",
            "starter\nGPU-h",
            "eligible",
        ],
        [
            [
                p["name"],
                _tariffs(p["gpu_tariffs"]),
                f"{p['prompt_token_tariff']}/{p['completion_token_tariff']}",
                f"{p['subsidy_pct']}%",
                p["priority_weight"],
                "yes" if p["preemptible_default"] else "no",
                p["max_gpus_per_job"],
                f"{p['capacity_share']:.0%}",
                hours(p["starter_gpu_hours"]),
                ", ".join(_KINDS.get(k, k) for k in p["eligible_kinds"]),
            ]
            for p in found
        ],
        spare=("prio", "max\nGPUs", "starter\nGPU-h", "€/M tokens\nin/out"),
        last_wraps_to=16,
    )


def _tariffs(tariffs: dict[str, str]) -> str:
    """'2.50' when one price covers every model, else 'h100 3.00, * 2.50' (the rest last)."""
    if list(tariffs) == ["*"]:
        return tariffs["*"]
    models = sorted(tariffs, key=lambda m: (m == "*", m))
    return ", ".join(f"{m} {tariffs[m]}" for m in models)


@programmes_app.command("set")
def programme_set(
    ctx: typer.Context,
    name: str,
    file: Annotated[
        Path,
        typer.Option(
            "--file", exists=True, dir_okay=False, help="the programme as JSON (see --json)"
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create programme NAME, or replace all of it but its name (admins).

    The file holds the fields `programmes --json` shows, e.g. {"title": ..., "eligible_kinds":
    ["university"], "gpu_tariffs": {"*": "2.50"}, "capacity_share": 0.2, ...}.
    """
    spec = _programme_file(file, name)
    with client(ctx) as api:
        exists = any(p["name"] == name for p in api.programmes())
        saved = api.update_programme(name, spec) if exists else api.create_programme(name, spec)
    if as_json:
        print_json(saved)
    else:
        typer.echo(f"programme {name} {'updated' if exists else 'created'}")


def _programme_file(path: Path, name: str) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object")
    if spec.get("name", name) != name:
        raise typer.BadParameter(f"{path} describes programme {spec['name']!r}, not {name!r}")
    return {k: v for k, v in spec.items() if k not in _READ_ONLY}


# ---- calls -----------------------------------------------------------------------------------


@calls_app.callback(invoke_without_command=True)
def calls_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the calls (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.calls()
    if as_json:
        print_json(found)
        return
    table(
        None,
        [
            "name",
            "programme",
            "opens",
            "closes",
            "budget\nGPU-h",
            "awarded",
            "left",
            "mode",
            "open",
            "title",
        ],
        [
            [
                c["name"],
                c["programme"],
                day(c["opens_at"]),
                day(c["closes_at"]),
                hours(c["budget_gpu_hours"]),
                hours(c["awarded_gpu_hours"]),
                hours(c["left_gpu_hours"]),
                _mode(c),
                "yes" if c["open"] else "no",
                c["title"],
            ]
            for c in found
        ],
        spare=("awarded", "open", "programme"),  # awarded: budget - left
        last_wraps_to=24,
    )


def _mode(call: dict[str, Any]) -> str:
    """A call's access mode, with "(EU)" where the EU funds it."""
    mode = str(call.get("access_mode", "reviewed")).replace("_", " ")
    return f"{mode} (EU)" if call.get("funding") == "eu" else mode


@calls_app.command("create")
def call_create(
    ctx: typer.Context,
    name: str,
    programme: Annotated[str, typer.Option(help="the programme it awards under")],
    title: Annotated[str, typer.Option()],
    opens: Annotated[str, when_option("--opens", "YYYY-MM-DD (UTC) or ISO 8601")],
    closes: Annotated[str, when_option("--closes", "YYYY-MM-DD (UTC) or ISO 8601")],
    budget: Annotated[float, typer.Option("--budget-gpu-hours", help="GPU-hours it may award")],
    mode: Annotated[
        str, typer.Option("--mode", help="reviewed, playground, fast_lane or large_scale")
    ] = "reviewed",
    ceiling: Annotated[
        float | None,
        typer.Option("--ceiling-gpu-hours", help="most per proposal (playground: required)"),
    ] = None,
    min_days: Annotated[
        int | None, typer.Option("--min-days", help="shortest allocation; default: the mode's")
    ] = None,
    max_days: Annotated[
        int | None, typer.Option("--max-days", help="longest allocation; default: the mode's")
    ] = None,
    cutoffs: Annotated[
        list[int] | None,
        typer.Option("--cutoff-day", help="large scale: a day of the month, 1–28 (repeatable)"),
    ] = None,
    funding: Annotated[str, typer.Option("--funding", help="eu or national")] = "national",
    as_json: JsonFlag = False,
) -> None:
    """Open a call for proposals in an access mode (admins)."""
    terms = {
        "access_mode": mode,
        "ceiling_gpu_hours": ceiling,
        "min_days": min_days,
        "max_days": max_days,
        "cutoff_days": cutoffs or None,
        "funding": funding,
    }
    with client(ctx) as api:
        call = api.create_call(
            name,
            programme=programme,
            title=title,
            opens_at=opens,
            closes_at=closes,
            budget_gpu_hours=budget,
            terms=terms,
        )
    if as_json:
        print_json(call)
    else:
        mode = "" if call["access_mode"] == "reviewed" else f", {_mode(call)}"
        typer.echo(f"call {call['name']} created: {hours(budget)} GPU-h under {programme}{mode}")


# ---- allocations -----------------------------------------------------------------------------


@allocations_app.callback(invoke_without_command=True)
def allocations_list(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List allocations and their balances (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.allocations(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        [
            "name",
            "project",
            "programme",
            "awarded\nGPU-h",
            "used",
            "reserved",
            "left",
            "from",
            "to",
            "quota\nGPUs",
            "alerts",
        ],
        [
            [
                a["name"],
                a["project"],
                a["programme"],
                _awarded(a),
                hours(a["settled_gpu_hours"]),
                hours(a["reserved_gpu_hours"]),
                hours(a["left_gpu_hours"]),
                day(a["valid_from"]),
                day(a["valid_to"]),
                a["quota_gpus"],
                ",".join(f"{x['threshold']}%" for x in a["alerts"]) or "-",
            ]
            for a in found
        ],
        spare=("quota\nGPUs", "from", "programme", "project"),  # its name starts with the project
    )


def _awarded(allocation: dict[str, Any]) -> str:
    """The award, and the adjustments since, so that awarded − used − reserved = left."""
    award, adjusted = allocation["award_gpu_hours"], allocation["adjusted_gpu_hours"]
    if not adjusted:
        return hours(award)
    return f"{hours(award)} ({hours(adjusted, signed=True)})"


@allocations_app.command("create")
def allocation_create(
    ctx: typer.Context,
    project: Annotated[str, typer.Option()],
    programme: Annotated[str, typer.Option()],
    gpu_hours: Annotated[float, typer.Option("--gpu-hours")],
    start: From,
    end: To,
    reason: Annotated[
        str, typer.Option(help="why it is granted, e.g. the contract (for the ledger)")
    ],
    quota_gpus: Annotated[
        int | None, typer.Option("--quota-gpus", help="GPUs the project can always get back")
    ] = None,
    gpu_model: Annotated[str | None, typer.Option("--gpu-model", help="default: any model")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Grant GPU-hours without a proposal, e.g. under a contract (admins)."""
    with client(ctx) as api:
        a = api.create_allocation(
            project=project,
            programme=programme,
            gpu_hours=gpu_hours,
            valid_from=start,
            valid_to=end,
            reason=reason,
            quota_gpus=quota_gpus,
            gpu_model=gpu_model,
        )
    if as_json:
        print_json(a)
    else:
        typer.echo(f"allocation {a['name']} created: {hours(gpu_hours)} GPU-h for {project}")


@allocations_app.command("adjust")
def allocation_adjust(
    ctx: typer.Context,
    name: str,
    gpu_hours: Annotated[
        float, typer.Option("--gpu-hours", help="positive adds, negative takes (e.g. -20)")
    ],
    reason: Annotated[str, typer.Option(help="why the balance changes (for the ledger)")],
    as_json: JsonFlag = False,
) -> None:
    """Add or take GPU-hours (admins and finance)."""
    with client(ctx) as api:
        a = api.adjust_allocation(name, gpu_hours=gpu_hours, reason=reason)
    if as_json:
        print_json(a)
    else:
        typer.echo(f"allocation {name} adjusted: {hours(a['left_gpu_hours'])} GPU-h left")


@allocations_app.command("ledger")
def allocation_ledger(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Every entry that moved the allocation's balance, oldest first."""
    with client(ctx) as api:
        entries = api.allocation_ledger(name)
    if as_json:
        print_json(entries)
        return
    table(
        name,
        ["at", "kind", "GPU-h", "€", "job", "by", "reason"],
        [
            [
                minute(e["at"]),
                e["kind"],
                hours(e["gpu_hours"], signed=True),
                e["cost"] if e["kind"] == "settle" else "",
                _job(e),
                e["actor"],
                e["reason"],
            ]
            for e in entries
        ],
        spare=("by",),
        last_wraps_to=40,
    )


def _job(entry: dict[str, Any]) -> str:
    """'12.1': job 12, attempt 1, as `usage` shows it; '-' for an entry of no job."""
    if entry["job_id"] is None:
        return "-"
    if entry["attempt"] is None:
        return str(entry["job_id"])
    return f"{entry['job_id']}.{entry['attempt']}"
