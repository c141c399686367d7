"""`aifactory endpoints` (a project's trained models, served) and `aifactory keys` (inference
keys for the gateway at /v1, which any OpenAI client calls).

    aifactory endpoints create dutch --project nlp --from 2      # job 2's checkpoints
    aifactory keys create app --project nlp --token-budget 100000 # the key is shown once
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table, when
from aifactory.cli.units import JsonFlag, parse_duration

endpoints_app = typer.Typer(help="Inference endpoints: a project's trained models, served.")
keys_app = typer.Typer(help="Inference keys: what applications call the gateway (/v1) with.")
Project = Annotated[str, typer.Option(help="the project")]


def register(root: typer.Typer) -> None:
    root.add_typer(endpoints_app, name="endpoints")
    root.add_typer(keys_app, name="keys")


@endpoints_app.command("create")
def endpoint_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the model's name at /v1")],
    project: Project,
    source_job: Annotated[
        int | None,
        typer.Option("--from", help="a succeeded training job whose checkpoints it serves"),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="recipe (the Dutch GPT recipe's engine) or vllm (GPUs)")
    ] = "recipe",
    dataset: Annotated[
        str | None,
        typer.Option(help="--engine vllm: the dataset holding the model (Hugging Face layout)"),
    ] = None,
    engine_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--engine-arg",
            help="--engine vllm: an option of vLLM's, e.g. --engine-arg=--max-model-len=4096",
        ),
    ] = None,
    replicas: Annotated[
        int, typer.Option(min=0, max=16, help="the least that run (0: scale to zero when idle)")
    ] = 1,
    max_replicas: Annotated[
        int | None,
        typer.Option(min=1, max=16, help="the most the autoscaler runs (default: --replicas)"),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="requests one replica serves at once")
    ] = 4,
    idle_timeout: Annotated[
        str,
        typer.Option(help="scale down after this long with little load (e.g. 15m)"),
    ] = "15m",
    time_limit: Annotated[
        str,
        typer.Option(help="each replica's time limit (its allocation reserves GPUs × this)"),
    ] = "24h",
    cpus: Annotated[int, typer.Option(min=1)] = 1,
    memory_mb: Annotated[int, typer.Option("--memory-mb", min=256)] = 2048,
    gpus: Annotated[int, typer.Option(min=0)] = 0,
    environment: Annotated[
        str | None, typer.Option(help="a Python environment with PyTorch (aifactory env list)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Serve a trained model: its replicas are jobs of the project running the recipe's engine;
    the gateway (/v1) routes to those running."""
    with client(ctx) as api:
        found = api.create_endpoint(
            name,
            project=project,
            source_job=source_job,
            replicas=replicas,
            cpus=cpus,
            memory_mb=memory_mb,
            gpus=gpus,
            environment=environment,
            max_replicas=max_replicas,
            concurrency=concurrency,
            idle_timeout_s=parse_duration(idle_timeout),
            time_limit_s=parse_duration(time_limit),
            engine=engine,
            dataset=dataset,
            engine_args=engine_arg or (),
        )
    if as_json:
        print_json(found)
        return
    jobs = ", ".join(str(r["job_id"]) for r in found["running"]) or "none yet (cold start)"
    typer.echo(
        f"endpoint {name} ({project}): {found['replicas']}–{found['max_replicas']} replicas; "
        f"replicas are jobs {jobs}; model {name!r} at /v1"
    )


@endpoints_app.command("list")
def endpoint_list(ctx: typer.Context, project: Project, as_json: JsonFlag = False) -> None:
    with client(ctx) as api:
        found = api.endpoints(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["name", "from job", "replicas", "jobs", "requests", "prompt tok", "completion tok", "€"],
        [
            [
                e["name"],
                e["source_job"],
                f"{e['replicas']}–{e['max_replicas']}",
                _replicas(e) or None,
                e["requests"],
                e["prompt_tokens"],
                e["completion_tokens"],
                e["cost_eur"],
            ]
            for e in found
        ],
    )
    for e in found:
        if e["trouble"]:
            typer.echo(f"{e['name']}: {e['trouble']}", err=True)


def _replicas(endpoint: dict[str, Any]) -> str:
    """'12 RUNNING, 14 PENDING, 13 draining'."""
    draining = set(endpoint["draining"])
    return ", ".join(
        f"{r['job_id']} {'draining' if r['job_id'] in draining else r['state']}"
        for r in endpoint["running"]
    )


@endpoints_app.command("delete")
def endpoint_delete(ctx: typer.Context, name: str, project: Project) -> None:
    """Stop serving: its replicas are cancelled; what it served stays counted."""
    with client(ctx) as api:
        api.delete_endpoint(name, project=project)
    typer.echo(f"endpoint {name} removed")


@keys_app.command("create")
def key_create(
    ctx: typer.Context,
    name: str,
    project: Project,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="only this model (repeatable)")
    ] = None,
    token_budget: Annotated[
        int | None, typer.Option("--token-budget", min=1, help="prompt + completion tokens")
    ] = None,
    budget_eur: Annotated[
        str | None,
        typer.Option("--budget-eur", help="euros (e.g. 25.00) at the programme's token tariffs"),
    ] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="tokens per minute")] = None,
    ttl_days: Annotated[float | None, typer.Option("--ttl-days", min=0.001)] = None,
    export: Annotated[
        bool,
        typer.Option(
            "--export",
            help="print it as shell lines that set OPENAI_API_KEY and OPENAI_BASE_URL, which "
            'OpenAI clients read: eval "$(aifactory keys create … --export)"',
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make a key; it is printed this once and kept only as its SHA-256."""
    with client(ctx) as api:
        found = api.create_inference_key(
            name,
            project=project,
            models=model,
            token_budget=token_budget,
            ttl_days=ttl_days,
            budget_eur=budget_eur,
            rpm=rpm,
            tpm=tpm,
        )
        url = api.url
    if as_json:
        print_json(found)
        return
    if export:
        typer.echo(f"export OPENAI_API_KEY={shlex.quote(found['key'])}")
        typer.echo(f"export OPENAI_BASE_URL={shlex.quote(url + '/v1')}")
        return
    typer.echo(found["key"])
    typer.echo(
        f"inference key {found['id']} ({name}, project {project}): shown once. Use it with any "
        f"OpenAI client: base_url={url}/v1",
        err=True,
    )


@keys_app.command("list")
def key_list(ctx: typer.Context, project: Project, as_json: JsonFlag = False) -> None:
    with client(ctx) as api:
        found = api.inference_keys(project=project)
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "name", "prefix", "models", "tokens", "€ spent", "limits", "expires", "revoked"],
        [
            [
                k["id"],
                k["name"],
                k["prefix"],
                ", ".join(k["models"]) if k["models"] else "all",
                _of(k["tokens_used"], k["token_budget"]),
                _of(k["spent_eur"], k["budget_eur"]),
                _rates(k),
                when(k["expires_at"]),
                when(k["revoked_at"]),
            ]
            for k in found
        ],
        spare=("limits",),
    )


def _of(used: object, budget: object) -> str:
    return f"{used}" if budget is None else f"{used} of {budget}"


def _rates(key: dict[str, Any]) -> str | None:
    return ", ".join(f"{key[k]} {k}" for k in ("rpm", "tpm") if key[k] is not None) or None


@keys_app.command("revoke")
def key_revoke(ctx: typer.Context, key_id: int) -> None:
    with client(ctx) as api:
        api.revoke_inference_key(key_id)
    typer.echo(f"inference key {key_id} revoked")
