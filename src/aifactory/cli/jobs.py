"""Job commands: submit, jobs, show, logs, priority, queue (cancel, hold, release and update
are cli.queue_control's)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from aifactory.cli.context import client
from aifactory.cli.follow import follow
from aifactory.cli.formats import (
    parse_env,
    print_json,
    printable,
    table,
    when,
)
from aifactory.cli.units import JOULES_PER_KWH, JsonFlag, energy, hours, parse_duration
from aifactory.client import Client
from aifactory.recipes import catalogue

if TYPE_CHECKING:
    from aifactory.cli.jobfile import JobFile


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(submit)
    app.command("jobs")(list_jobs)
    app.command()(show)
    app.command()(logs)
    # `priority 7 -5`: a negative number is the argument, not an unknown option
    app.command("priority", context_settings={"ignore_unknown_options": True})(set_priority)
    app.command("queue")(show_queue)


def submit(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="JOB_FILE | -- COMMAND...",
            help="a job file (job.yaml, or a batch script with #AIF/#SBATCH lines: "
            "docs/jobfiles.md), or the command, after --",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="job name (default: the command)")] = None,
    project: Annotated[str | None, typer.Option(help="default: your default project")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per node", show_default="0")] = None,
    nodes: Annotated[int | None, typer.Option(show_default="1")] = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs per node", show_default="1")] = None,
    memory_mb: Annotated[
        int | None,
        typer.Option("--memory-mb", help="memory per node, MB", show_default="1024"),
    ] = None,
    gpu_model: Annotated[str | None, typer.Option("--gpu-model")] = None,
    time_limit: Annotated[
        int | None,
        typer.Option(
            "--time-limit",
            "-t",
            parser=parse_duration,
            metavar="DURATION",
            help="with its unit: 30m, 2h, 1h30m or 1:30:00; a bare number is refused",
            show_default="1h",
        ),
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    workdir: Annotated[
        str | None,
        typer.Option(help="absolute working directory, one of the project's identity's"),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(help="none (loopback only) or open, where the facility allows it"),
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option(
            help="a bash script instead of a command (its #AIF/#SBATCH lines are read)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    preemptible: Annotated[
        bool | None,
        typer.Option(
            "--preemptible/--not-preemptible",
            help="may be preempted (default: as the project's programme says)",
        ),
    ] = None,
    priority: Annotated[int | None, typer.Option(show_default="0")] = None,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify",
            help="tell me when it ends (e-mail/webhook, as `aifactory notifications prefs`)",
        ),
    ] = False,
    one_block: Annotated[
        bool,
        typer.Option(
            "--one-block",
            help="a job on several nodes runs inside one network block, waiting for one if "
            "need be (default: preferred, not waited for)",
        ),
    ] = False,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="a dataset it reads: NAME or NAME@VERSION (repeatable); its path comes in "
            "AIFACTORY_DATASET_<NAME>",
        ),
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(help="a recipe instead of a command (aifactory recipes lists them)"),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(help="the recipe's config: tiny, small, medium", show_default="tiny"),
    ] = None,
    start_from: Annotated[
        str | None,
        typer.Option("--from", help="fine-tuning: a job (its checkpoints) or a checkpoint path"),
    ] = None,
    inputs: Annotated[
        list[int] | None,
        typer.Option(
            "--input",
            help="an earlier job of the project whose own directory it reads, read-only "
            "(repeatable)",
        ),
    ] = None,
    array: Annotated[
        str | None,
        typer.Option(
            "--array",
            help="one job per index: 0-99, 0-99:10, 1,3,8-10; %8: at most 8 running "
            "(the index is in $AIFACTORY_ARRAY_INDEX)",
        ),
    ] = None,
    after_ok: Annotated[
        list[int] | None,
        typer.Option("--after-ok", help="start only after this job succeeded (repeatable)"),
    ] = None,
    after_any: Annotated[
        list[int] | None,
        typer.Option("--after-any", help="start only after this job ended (repeatable)"),
    ] = None,
    after_not_ok: Annotated[
        list[int] | None,
        typer.Option(
            "--after-not-ok", help="start only after this job failed or was cancelled (repeatable)"
        ),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            help="a Python environment of the project's or the facility's (aifactory env list): "
            "its python first on PATH",
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="an imported container image to run in (aifactory images list)"),
    ] = None,
    python: Annotated[
        str, typer.Option(help="the recipe's interpreter on the facility")
    ] = "python",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the job spec as JSON; submit nothing")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="resubmits return the same job")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            help="follow the job until it ends: its state and why it waits (stderr), its "
            "output (stdout); exit with its code"
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Submit a job: aifactory submit --gpus 1 -- python train.py; a job file: aifactory
    submit job.yaml, or a batch script with #AIF/#SBATCH lines: aifactory submit train.sh
    (docs/jobfiles.md; flags override the file); or a recipe: aifactory submit --recipe
    dutch-gpt-pretrain --config small"""
    given = {
        "name": ("--name", name),
        "project": ("--project", project),
        "gpus": ("--gpus", gpus),
        "nodes": ("--nodes", nodes),
        "cpus": ("--cpus", cpus),
        "memory_mb": ("--memory-mb", memory_mb),
        "gpu_model": ("--gpu-model", gpu_model),
        "time_limit_s": ("--time-limit", time_limit),
        "env": ("--env", parse_env(env or []) or None),
        "working_dir": ("--workdir", workdir),
        "network": ("--network", network),
        "preemptible": ("--preemptible" if preemptible else "--not-preemptible", preemptible),
        "priority": ("--priority", priority),
        "datasets": ("--dataset", dataset or None),
        "inputs": ("--input", list(dict.fromkeys(inputs or [])) or None),
        "array": ("--array", array),
        "after_ok": ("--after-ok", list(dict.fromkeys(after_ok or [])) or None),
        "after_any": ("--after-any", list(dict.fromkeys(after_any or [])) or None),
        "after_not_ok": ("--after-not-ok", list(dict.fromkeys(after_not_ok or [])) or None),
        "idempotency_key": ("--idempotency-key", idempotency_key),
        "environment": ("--environment", environment),
        "image": ("--image", image),
        "notify": ("--notify", True if notify else None),
        "one_block": ("--one-block", True if one_block else None),
    }
    flags = {field: pair for field, pair in given.items() if pair[1] is not None}
    source = _job_file(command, script, as_json=as_json)
    with client(ctx) as api:
        if source is not None:
            if recipe is not None or config is not None or start_from is not None:
                raise typer.BadParameter(
                    "a job file gives the command: leave out --recipe, --config and --from"
                )
            spec = _file_spec(source, flags, as_json=as_json)
        else:
            spec = _command_spec(api, command, recipe, config, start_from, python, flags)
        key = spec.pop("idempotency_key", None)
        if dry_run:
            print_json({k: v for k, v in spec.items() if v is not None})
            return
        job = api.submit(idempotency_key=key, **spec)
        if wait and as_json:
            job = api.wait(job["id"])  # machine-readable: only the ended job, on stdout
        elif wait:
            typer.echo(_submitted_line(job), err=True)
            job = follow(api, job["id"])
            raise typer.Exit(0 if job["state"] == "SUCCEEDED" else (job["exit_code"] or 1))
    if as_json:
        print_json(job)
    else:
        typer.echo(_submitted_line(job))
    if wait and job["state"] != "SUCCEEDED":
        raise typer.Exit(job["exit_code"] or 1)


def _submitted_line(job: dict[str, Any]) -> str:
    said = f"job {job['id']} {job['state']} in project {job['project']}"
    if job.get("array_id") is None:
        return said
    limit = job.get("array_throttle")
    return f"{said}: array {job['array_id']} (aifactory jobs --array {job['array_id']})" + (
        f", at most {limit} running at once" if limit else ""
    )


Flags = dict[str, tuple[str, Any]]  # a field of the job → (the flag, its value), flags given


def _command_spec(
    api: Client,
    command: list[str] | None,
    recipe: str | None,
    config: str | None,
    start_from: str | None,
    python: str,
    flags: Flags,
) -> dict[str, Any]:
    """The job a command or a recipe makes, with the flags given."""
    value = {field: found for field, (_, found) in flags.items()}
    given = catalogue.Overrides(
        gpus=value.get("gpus"),
        cpus=value.get("cpus"),
        memory_mb=value.get("memory_mb"),
        time_limit_s=value.get("time_limit_s"),
        name=value.get("name"),
        python=python,
    )
    if recipe is not None:
        if command:
            raise typer.BadParameter("--recipe gives the command: leave out the command")
        origin = _checkpoint_of(api, start_from) if start_from else None
        spec = _recipe_spec(recipe, config or "tiny", replace(given, start_from=origin))
    else:
        if config is not None or start_from is not None:
            raise typer.BadParameter("--config and --from go with --recipe")
        if not command:
            raise typer.BadParameter("give a command after --, a job file or --script FILE")
        spec = _plain_spec(command, given)
    spec.update(
        project=value.get("project"),
        nodes=value.get("nodes", 1),
        gpu_model=value.get("gpu_model"),
        env=value.get("env", {}),
        working_dir=value.get("working_dir"),
        priority=value.get("priority", 0),
        idempotency_key=value.get("idempotency_key"),
    )
    for field in ("network", "preemptible", "notify", "one_block"):
        if field in value:
            spec[field] = value[field]
    reads = list(value.get("inputs", []))
    if start_from is not None and start_from.isdigit():
        reads.append(int(start_from))  # --from JOB: its checkpoints are read
    if reads:
        spec["inputs"] = list(dict.fromkeys(reads))
    if "datasets" in value:
        spec["datasets"] = [*spec.get("datasets", []), *value["datasets"]]
    for field in ("array", "after_ok", "after_any", "after_not_ok", "environment", "image"):
        if field in value:
            spec[field] = value[field]
    return spec


def _plain_spec(command: list[str], given: catalogue.Overrides) -> dict[str, Any]:
    return {
        "name": given.name or Path(command[0]).name[:128],
        "command": command,
        "gpus": given.gpus or 0,
        "cpus": given.cpus or 1,
        "memory_mb": given.memory_mb or 1024,
        "time_limit_s": given.time_limit_s or 3600,
    }


def _recipe_spec(recipe: str, config: str, given: catalogue.Overrides) -> dict[str, Any]:
    try:
        return catalogue.expand(recipe, config, given)
    except catalogue.UnknownRecipe as exc:
        raise typer.BadParameter(str(exc)) from None


def _checkpoint_of(api: Client, start_from: str) -> str:
    """A job id stands for that job's checkpoint directory (the facility says where it is);
    anything else is a checkpoint file or directory on the facility, as given."""
    if not start_from.isdigit():
        return start_from
    found: str | None = api.progress(int(start_from))["checkpoint_dir"]
    if found is None:
        raise typer.BadParameter(f"the facility keeps no checkpoints for job {start_from}")
    return found


def _job_file(command: list[str] | None, script: Path | None, *, as_json: bool) -> JobFile | None:
    """The job file named, read, its warnings printed: `--script FILE`, or a command that is
    one local file named *.yaml or *.yml, or a bash script (*.sh, *.sbatch, *.slurm, or a
    bash/sh #! line). Any other command is a command, as before (docs/jobfiles.md)."""
    if script is not None and command:
        raise typer.BadParameter("give a command after -- or --script FILE, not both")
    path = script or (Path(command[0]) if command and len(command) == 1 else None)
    if path is None or not (path.is_file() or path.suffix.lower() in (".yaml", ".yml")):
        return None  # checked before the import: a plain command loads no PyYAML
    from aifactory.cli import jobfile  # PyYAML and the API's input types: for a job file only

    kind = "script" if script is not None else jobfile.kind_of(path) if path.is_file() else None
    if kind is None:
        if path.suffix.lower() in jobfile.YAML_SUFFIXES:
            _refuse([f"{path}: no such job file"], as_json=as_json)
        return None
    try:
        found = jobfile.read(path, kind)
    except jobfile.JobFileError as exc:
        _refuse(exc.problems, as_json=as_json)
    for warning in found.warnings:
        typer.secho(f"warning: {warning}", err=True, fg="yellow")
    return found


def _file_spec(source: JobFile, flags: Flags, *, as_json: bool) -> dict[str, Any]:
    """The job file's fields with the flags given over them, as the API's own type judges
    them; every problem is named by its line in the file or by its flag."""
    from aifactory.cli import jobfile

    body = jobfile.merged(source, {field: value for field, (_, value) in flags.items()})
    try:
        jobfile.check(body, source, {field: flag for field, (flag, _) in flags.items()})
    except jobfile.JobFileError as exc:
        _refuse(exc.problems, as_json=as_json)
    return body


def _refuse(problems: list[str], *, as_json: bool) -> NoReturn:
    """Every problem of a job file, one a line (`file:line: field: why`), and exit 2."""
    if as_json:
        said = {"status": None, "error": "job_file", "field": None, "problems": problems}
        typer.echo(json.dumps({**said, "message": "; ".join(problems)}, sort_keys=True), err=True)
    else:
        for problem in problems:
            typer.secho(f"error: {printable(problem)}", err=True, fg="red")
    raise typer.Exit(2)


def list_jobs(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option(help="e.g. RUNNING")] = None,
    owner: Annotated[str | None, typer.Option(help="only this user's jobs")] = None,
    array: Annotated[int | None, typer.Option(help="only this array's tasks")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List jobs you can see, newest first."""
    with client(ctx) as api:
        found = api.jobs(
            project=project,
            state=state.upper() if state else None,
            owner=owner,
            limit=limit,
            array=array,
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
                j["name"] + (f"[{j['array_index']}]" if j.get("array_id") is not None else ""),
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
        trained = api.progress(job_id, points=2)
    if as_json:
        print_json({**job, "progress": trained})
        return
    say(
        f"job {job['id']}  {job['name']}  [{job['state']}]"
        + (f"  {job['state_reason']}" if job["state_reason"] else "")
    )
    say(f"  project {job['project']}, user {job['user']}")
    say(f"  command {' '.join(job['command'])}")
    if job.get("environment"):
        say(f"  runs in environment {job['environment']} (build {job['environment_key'][:12]})")
    if job.get("image"):
        say(f"  runs in image {job['image']} ({job['image_digest'][:19]})")
    say(
        f"  asks    {job['nodes']} node(s) × {job['gpus']} GPU, {job['cpus']} CPU, "
        f"{job['memory_mb']} MB; limit {job['time_limit_s']} s"
    )
    if job["placement"]:
        for node, part in job["placement"].items():
            say(f"  placed  {node}: GPUs {part['gpu_ids'] or '-'}, CPUs {part['cpu_ids']}")
    say(f"  exit    {job['exit_code'] if job['exit_code'] is not None else '-'}")
    for used in job.get("datasets", []):
        say(
            f"  data    {used['dataset']}@{used['version']} in ${used['env']} "
            f"[{used['version_state']}, {used['access']}]: {used['note']}"
        )
    for used in job.get("usage", []):
        paid = f"allocation {used['allocation']}" if used["allocation"] else "metered only"
        say(
            f"  used    attempt {used['attempt']}: {hours(used['gpu_hours'])} GPU-h, "
            f"{energy(used['energy_j'] / JOULES_PER_KWH)} ({used['energy_source']}), "
            f"€ {used['net']} net of € {used['subsidy']} subsidy; {paid}"
        )
    _show_progress(trained)
    if job.get("queue"):
        waiting = job["queue"]
        place = "held" if waiting.get("held") else f"#{waiting['position']}"
        say(f"  queue   {place}: {waiting['reason']}")
        say(f"  start   {_estimate(waiting['estimated_start_at'])}")
    table(
        "history",
        ["at", "from", "to", "reason", "by"],
        [
            [when(e["at"]), e["from_state"], e["to_state"], e["reason"], e["actor"]]
            for e in job["events"]
        ],
    )


def _show_progress(trained: dict[str, Any]) -> None:
    """The latest figures the job reported, and what its preemptions lost (docs/recipes.md)."""
    latest = trained.get("latest")
    if latest:
        figures = [
            f"step {latest['step']}" if latest["step"] is not None else None,
            f"loss {latest['loss']:.4g}" if latest["loss"] is not None else None,
            f"{latest['tokens_per_s']:,.0f} tokens/s" if latest["tokens_per_s"] else None,
            f"eval ppl {latest['eval_ppl']:.4g}" if latest["eval_ppl"] is not None else None,
        ]
        say(f"  train   {', '.join(f for f in figures if f)} (attempt {latest['attempt']})")
        if latest["checkpoint_step"] is not None:
            say(
                f"  ckpt    step {latest['checkpoint_step']} at {when(latest['checkpoint_at'])} "
                f"in {trained['checkpoint_dir']}"
            )
    for cut in trained.get("preemptions", []):
        kept = f"checkpoint at step {cut['checkpoint_step']}" if cut["checkpoint_at"] else None
        say(
            f"  lost    {cut['lost_gpu_s']:.0f} GPU-s to the preemption at "
            f"{when(cut['preempted_at'])} ({kept or 'no checkpoint: the whole run'}"
            + (f", {cut['lost_steps']} steps" if cut["lost_steps"] is not None else "")
            + ")"
        )


def say(text: str) -> None:
    """A line of `show`: what the job and its user chose is shown, never acted on."""
    typer.echo(printable(text))


def logs(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="stream until the job ends")
    ] = False,
    tail: Annotated[int | None, typer.Option(help="only the last N lines")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="print JSON for scripts: {text, offset, size, complete}; with -f one such "
            "object a line as the output comes",
        ),
    ] = False,
) -> None:
    """Print a job's output (stdout and stderr)."""
    if as_json:
        _logs_json(ctx, job_id, follow=follow, tail=tail)
        return
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


def _logs_json(ctx: typer.Context, job_id: int, *, follow: bool, tail: int | None) -> None:
    """The log as the API gives it: all of it (or its last lines) in one object; following,
    one object per piece read, each on its own line, the last one `complete`."""
    with client(ctx) as api:
        chunk = api.logs(job_id, tail=tail) if tail is not None else api.logs(job_id)
        while not follow and not chunk["complete"] and chunk["offset"] < chunk["size"]:
            more = api.logs(job_id, offset=chunk["offset"])
            chunk = {**more, "text": chunk["text"] + more["text"]}
        typer.echo(json.dumps(chunk, ensure_ascii=False))
        while follow and not chunk["complete"]:
            time.sleep(0.5)
            chunk = api.logs(job_id, offset=chunk["offset"])
            if chunk["text"] or chunk["complete"]:
                typer.echo(json.dumps(chunk, ensure_ascii=False))


def set_priority(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="JOB")],
    value: Annotated[int, typer.Argument(metavar="N", help="-1000 to 1000")],
    as_json: JsonFlag = False,
) -> None:
    """Operators and admins: move a waiting job up (N above 0) or down the queue. Tenants may
    only submit at 0 or below: fair share decides between projects, not who asks loudest."""
    with client(ctx) as api:
        job = api.set_priority(job_id, value)
    if as_json:
        print_json(job)
    else:
        typer.echo(f"job {job_id} now waits at priority {job['priority']}")


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
                "held" if j["queue"].get("held") else j["queue"]["position"],
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
