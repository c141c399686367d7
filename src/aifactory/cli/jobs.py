"""Job commands: submit, jobs, show, logs, cancel."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import parse_duration, parse_env, print_json, table, when
from aifactory.cli.units import JOULES_PER_KWH, energy, hours

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(submit)
    app.command("jobs")(list_jobs)
    app.command()(show)
    app.command()(logs)
    app.command()(cancel)
    app.command("queue")(show_queue)


def submit(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="the command, after --")] = None,
    name: Annotated[str | None, typer.Option(help="job name (default: the command)")] = None,
    project: Annotated[str | None, typer.Option(help="default: your default project")] = None,
    gpus: Annotated[int, typer.Option(help="GPUs per node")] = 0,
    nodes: Annotated[int, typer.Option()] = 1,
    cpus: Annotated[int, typer.Option(help="CPUs per node")] = 1,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="memory per node")] = 1024,
    gpu_model: Annotated[str | None, typer.Option("--gpu-model")] = None,
    time_limit: Annotated[
        str, typer.Option("--time-limit", "-t", help="90, 30m, 2h or 1:30:00")
    ] = "1h",
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    workdir: Annotated[str | None, typer.Option(help="absolute working directory")] = None,
    script: Annotated[
        Path | None,
        typer.Option(help="a bash script file instead of a command", exists=True, dir_okay=False),
    ] = None,
    preemptible: Annotated[
        bool | None,
        typer.Option(
            "--preemptible/--not-preemptible",
            help="may be preempted (default: as the project's programme says)",
        ),
    ] = None,
    priority: Annotated[int, typer.Option()] = 0,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="a dataset it reads: NAME or NAME@VERSION (repeatable); its path comes in "
            "AIFACTORY_DATASET_<NAME>",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="resubmits return the same job")
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the job to end; exit with its code")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Submit a job: aifactory submit --gpus 1 -- python train.py"""
    if not command and script is None:
        raise typer.BadParameter("give a command after -- or --script FILE")
    spec: dict[str, Any] = {
        "name": name or Path((command or [str(script)])[0]).name[:128],
        "project": project,
        "gpus": gpus,
        "nodes": nodes,
        "cpus": cpus,
        "memory_mb": memory_mb,
        "gpu_model": gpu_model,
        "time_limit_s": parse_duration(time_limit),
        "env": parse_env(env or []),
        "working_dir": workdir,
        "preemptible": preemptible,
        "priority": priority,
        "datasets": dataset or None,
    }
    with client(ctx) as api:
        job = api.submit(
            command or None,
            script=script.read_text() if script else None,
            idempotency_key=idempotency_key,
            **spec,
        )
        if wait:
            job = api.wait(job["id"])
    if as_json:
        print_json(job)
    else:
        typer.echo(f"job {job['id']} {job['state']} in project {job['project']}")
    if wait and job["state"] != "SUCCEEDED":
        raise typer.Exit(job["exit_code"] or 1)


def list_jobs(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option(help="e.g. RUNNING")] = None,
    owner: Annotated[str | None, typer.Option(help="only this user's jobs")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List jobs you can see, newest first."""
    with client(ctx) as api:
        found = api.jobs(
            project=project, state=state.upper() if state else None, owner=owner, limit=limit
        )
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "name", "project", "user", "state", "gpus", "submitted", "exit"],
        [
            [
                j["id"],
                j["name"],
                j["project"],
                j["user"],
                j["state"],
                j["gpus"] * j["nodes"],
                when(j["submitted_at"]),
                j["exit_code"],
            ]
            for j in found
        ],
    )


def show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    as_json: JsonFlag = False,
) -> None:
    """Show a job: its spec, state, placement, exit code and history."""
    with client(ctx) as api:
        job = api.job(job_id)
    if as_json:
        print_json(job)
        return
    typer.echo(
        f"job {job['id']}  {job['name']}  [{job['state']}]"
        + (f"  {job['state_reason']}" if job["state_reason"] else "")
    )
    typer.echo(f"  project {job['project']}, user {job['user']}")
    typer.echo(f"  command {' '.join(job['command'])}")
    typer.echo(
        f"  asks    {job['nodes']} node(s) × {job['gpus']} GPU, {job['cpus']} CPU, "
        f"{job['memory_mb']} MB; limit {job['time_limit_s']} s"
    )
    if job["placement"]:
        for node, part in job["placement"].items():
            typer.echo(f"  placed  {node}: GPUs {part['gpu_ids'] or '-'}, CPUs {part['cpu_ids']}")
    typer.echo(f"  exit    {job['exit_code'] if job['exit_code'] is not None else '-'}")
    for used in job.get("datasets", []):
        typer.echo(
            f"  data    {used['dataset']}@{used['version']} in ${used['env']} "
            f"[{used['version_state']}, {used['access']}]: {used['note']}"
        )
    for used in job.get("usage", []):
        paid = f"allocation {used['allocation']}" if used["allocation"] else "metered only"
        typer.echo(
            f"  used    attempt {used['attempt']}: {hours(used['gpu_hours'])} GPU-h, "
            f"{energy(used['energy_j'] / JOULES_PER_KWH)} ({used['energy_source']}), "
            f"€ {used['net']} net of € {used['subsidy']} subsidy; {paid}"
        )
    if job.get("queue"):
        waiting = job["queue"]
        typer.echo(f"  queue   #{waiting['position']}: {waiting['reason']}")
        typer.echo(f"  start   {_estimate(waiting['estimated_start_at'])}")
    table(
        "history",
        ["at", "from", "to", "reason", "by"],
        [
            [when(e["at"]), e["from_state"], e["to_state"], e["reason"], e["actor"]]
            for e in job["events"]
        ],
    )


def logs(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="stream until the job ends")
    ] = False,
    tail: Annotated[int | None, typer.Option(help="only the last N lines")] = None,
) -> None:
    """Print a job's output (stdout and stderr)."""
    with client(ctx) as api:
        if tail is not None:
            first = api.logs(job_id, tail=tail)
            sys.stdout.write(first["text"])
            offset = first["offset"]
            if not follow:
                return
        else:
            offset = 0
        while not follow:
            chunk = api.logs(job_id, offset=offset)
            sys.stdout.write(chunk["text"])
            offset = chunk["offset"]
            if offset >= chunk["size"]:
                return
        for text in api.follow_logs(job_id, offset=offset):
            sys.stdout.write(text)
            sys.stdout.flush()


def cancel(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    as_json: JsonFlag = False,
) -> None:
    """Cancel a job (a running one is stopped: SIGTERM, grace period, SIGKILL)."""
    with client(ctx) as api:
        job = api.cancel(job_id)
    if as_json:
        print_json(job)
    elif job["state"] == "CANCELLED":
        typer.echo(f"job {job_id} cancelled")
    else:
        typer.echo(f"job {job_id} is being stopped")


def show_queue(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Waiting jobs in queue order: why each waits and when it may start."""
    with client(ctx) as api:
        found = api.queue(project=project, limit=limit)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["#", "id", "name", "project", "gpus", "estimated start", "why waiting"],
        [
            [
                j["queue"]["position"],
                j["id"],
                j["name"],
                j["project"],
                j["gpus"] * j["nodes"],
                _estimate(j["queue"]["estimated_start_at"]),
                j["queue"]["reason"],
            ]
            for j in found
        ],
    )


def _estimate(value: str | None) -> str:
    """An estimate, never a promise: jobs end sooner or later than expected."""
    return f"about {when(value)} (estimate)" if value else "unknown"
