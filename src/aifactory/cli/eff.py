"""`aifactory eff`: a job's efficiency report (as Slurm's `seff`), or a project's least efficient
jobs (`--project P --worst N`). docs/efficiency.md says what each figure is."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, printable, table
from aifactory.cli.units import JsonFlag

NOT_MEASURED = "not measured"


def register(app: typer.Typer) -> None:
    app.command("eff")(eff)


def eff(
    ctx: typer.Context,
    job: Annotated[int | None, typer.Argument(help="the job to report on", min=1)] = None,
    project: Annotated[
        str | None, typer.Option(help="list this project's least efficient finished jobs")
    ] = None,
    worst: Annotated[int, typer.Option(help="how many of them (with --project)", min=1)] = 10,
    as_json: JsonFlag = False,
) -> None:
    """What a job asked for against what it used: CPU, memory, GPU; with hints when it asked
    far more than it used. With --project: the jobs that wasted most, worst first."""
    if (job is None) == (project is None):
        raise typer.BadParameter("give a job id, or --project NAME (and --worst N), not both")
    with client(ctx) as api:
        if job is not None:
            _job(api.efficiency(job), as_json=as_json)
        else:
            assert project is not None
            _worst(api.least_efficient(project, limit=worst), project, as_json=as_json)


def _job(report: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    use = report["overall"]
    attempts = report["attempts"]
    typer.echo(
        f"Job {report['job_id']}: {printable(report['name'])} "
        f"({report['project']}, {report['user']}) {report['state']}"
    )
    if use is None:
        typer.echo("No attempt has ended yet: nothing measured to report.")
        return
    count = len(attempts)
    typer.echo(f"Ran      {_duration(use['wall_s'])} ({count} attempt{'s' * (count != 1)})")
    for label, line in _lines(use):
        typer.echo(f"{label:<8} {line}")
    if count > 1:
        _attempts(attempts)
    for hint in report["hints"]:
        typer.echo(f"Hint:    {hint}")


def _lines(use: dict[str, Any]) -> list[tuple[str, str]]:
    return [("CPU", _cpu(use)), ("Memory", _memory(use)), ("GPU", _gpu(use))]


def _cpu(use: dict[str, Any]) -> str:
    asked = f"{use['cpus']} asked"
    if use["cpu_time_s"] is None:
        return f"{asked}, use {NOT_MEASURED}"
    busy = use["cpu_time_s"] / use["wall_s"] if use["wall_s"] > 0 else 0.0
    return f"{asked}, {busy:.2f} busy on average: {_pct(use['cpu_efficiency_pct'])} efficiency"


def _memory(use: dict[str, Any]) -> str:
    asked = f"{_size(use['memory_mb'])} asked"
    if use["peak_rss_mb"] is None:
        return f"{asked}, use {NOT_MEASURED}"
    efficiency = _pct(use["memory_efficiency_pct"])
    return f"{asked}, at most {_size(use['peak_rss_mb'])} used: {efficiency} efficiency"


def _gpu(use: dict[str, Any]) -> str:
    if not use["gpus"]:
        return "none asked"
    asked = f"{use['gpus']} asked"
    if use["gpu_utilisation_pct"] is None:
        return f"{asked}, use {NOT_MEASURED}"
    peak = use["peak_gpu_memory_mb"]
    memory = f", at most {_size(peak)} of GPU memory" if peak is not None else ""
    return f"{asked}, busy {_pct(use['gpu_utilisation_pct'])} of the time{memory}"


def _attempts(attempts: list[dict[str, Any]]) -> None:
    rows = [
        [
            a["attempt"],
            _duration(a["wall_s"]),
            _pct(a["cpu_efficiency_pct"]),
            _size(a["peak_rss_mb"]) if a["peak_rss_mb"] is not None else NOT_MEASURED,
            _pct(a["gpu_utilisation_pct"]) if a["gpus"] else "-",
        ]
        for a in attempts
    ]
    table("Attempts", ["Attempt", "Ran", "CPU eff.", "Peak memory", "GPU busy"], rows)


def _worst(reports: list[dict[str, Any]], project: str, *, as_json: bool) -> None:
    if as_json:
        print_json(reports)
        return
    if not reports:
        typer.echo(f"No finished job of {project} has anything measured yet.")
        return
    rows = [_worst_row(report) for report in reports]
    columns = ["Job", "Name", "User", "State", "Idle GPU-h", "Idle CPU-h", "CPU", "Memory", "GPU"]
    table(f"Least efficient jobs of {project}", columns, rows, spare=("Name", "User", "State"))


def _worst_row(report: dict[str, Any]) -> list[Any]:
    use = report["overall"]
    return [
        report["job_id"],
        report["name"],
        report["user"],
        report["state"],
        f"{use['idle_gpu_s'] / 3600:.2f}",
        f"{use['idle_cpu_s'] / 3600:.2f}",
        _pct(use["cpu_efficiency_pct"]),
        _pct(use["memory_efficiency_pct"]),
        _pct(use["gpu_utilisation_pct"]) if use["gpus"] else "-",
    ]


def _pct(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:.0f} %" if value >= 10 else f"{value:.1f} %"


def _size(mb: float) -> str:
    if mb < 1024:
        return f"{mb:.0f} MB"
    return f"{mb / 1024:.1f}".removesuffix(".0") + " GB"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
