"""`aifactory up` (start a facility here) and the operators' facility commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from aifactory.cli.config import config_path, load, save
from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.nodes import drain_text
from aifactory.cli.units import JsonFlag

if TYPE_CHECKING:
    from aifactory.config import Settings

facility_app = typer.Typer(
    help="The facility: nodes, queue, admission (operators).", invoke_without_command=True
)
sites_app = typer.Typer(
    help="Sites: where nodes stand, and the country data residency counts them in.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command("admin-token")(admin_token)
    app.add_typer(facility_app, name="facility")
    app.add_typer(sites_app, name="sites")


def up(
    host: Annotated[str, typer.Option(help="address to serve the API on")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="database, jobs and logs")] = Path(
        ".aifactory"
    ),
    virtual_gpus: Annotated[
        int | None,
        typer.Option(
            "--virtual-gpus", help="declare N logical GPU slots (demos, tests, no-GPU machines)"
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option(envvar="AIFACTORY_EXECUTOR", help="local or slurm")
    ] = "local",
    slurm_conf: Annotated[
        Path | None,
        typer.Option(
            "--slurm-conf",
            envvar=["AIFACTORY_SLURM_CONF", "SLURM_CONF"],
            help="slurm: the cluster's slurm.conf (default: $SLURM_CONF, else Slurm's own)",
        ),
    ] = None,
    slurm_partition: Annotated[
        str | None,
        typer.Option(
            "--slurm-partition",
            envvar="AIFACTORY_SLURM_PARTITION",
            help="slurm: the partition to run in (default: the cluster's)",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="AIFACTORY_DATABASE_URL",
            help="e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir)",
        ),
    ] = None,
    cpus: Annotated[int | None, typer.Option(help="CPU slots to offer")] = None,
    memory_mb: Annotated[int | None, typer.Option("--memory-mb")] = None,
    site: Annotated[
        str, typer.Option(help="this site's name (a country code names a site in that country)")
    ] = "NL",
    country: Annotated[
        str | None, typer.Option(help="the site's country (ISO alpha-2), for data residency")
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            envvar="AIFACTORY_DATA_ROOT",
            help="where datasets lie (default: DATA_DIR/datasets)",
        ),
    ] = None,
    paused: Annotated[bool, typer.Option(help="start with admission paused")] = False,
    policy: Annotated[
        str,
        typer.Option(
            envvar="AIFACTORY_POLICY",
            help="scheduling policy: fairshare (default), slurm, easy or fifo",
        ),
    ] = "fairshare",
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="API worker processes (one control loop acts at a time)"),
    ] = 1,
    jobs_dir: Annotated[
        Path | None,
        typer.Option(
            "--jobs-dir",
            envvar="AIFACTORY_JOB_DIRS",
            help="where jobs' directories lie (default: DATA_DIR/jobs); Slurm: one the nodes share",
        ),
    ] = None,
    sandbox_software: Annotated[
        list[Path] | None,
        typer.Option(
            "--sandbox-software",
            help="more read-only software for jobs, e.g. /opt/cuda (repeatable; default: /usr "
            "and this facility's Python)",
        ),
    ] = None,
    workdir_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--workdir-root",
            help="where jobs' named working directories may lie (repeatable; e.g. /projects; "
            "default: only the jobs directory)",
        ),
    ] = None,
    allow_open_network: Annotated[
        bool,
        typer.Option(
            "--allow-open-network",
            help="let jobs ask for the host's network (--network open); default: none",
        ),
    ] = False,
    software_root: Annotated[
        Path | None,
        typer.Option(
            "--software-root",
            envvar="AIFACTORY_SOFTWARE_ROOT",
            help="where environments and images lie (default: DATA_DIR/software); Slurm: one "
            "the nodes share",
        ),
    ] = None,
    package_index: Annotated[
        str | None,
        typer.Option(
            "--package-index",
            envvar="AIFACTORY_PACKAGE_INDEX",
            help="the package registry environments are built from: a PEP 503 index URL, e.g. "
            "the facility's mirror (default: pip's own)",
        ),
    ] = None,
    package_find_links: Annotated[
        list[Path] | None,
        typer.Option(
            "--package-find-links",
            help="a directory of wheels builds may take packages from (repeatable), e.g. an "
            "offline wheelhouse",
        ),
    ] = None,
    container_runtime: Annotated[
        Path | None,
        typer.Option(
            "--container-runtime",
            help="the OCI runtime for jobs with an image (default: runc, else crun)",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            envvar="AIFACTORY_TRUSTED_PROXIES",
            help="a reverse proxy's address or network whose X-Forwarded-For is believed "
            "(repeatable; default: none, the connecting address is the client's)",
        ),
    ] = None,
    oidc_providers: Annotated[
        Path | None,
        typer.Option(
            "--oidc-providers",
            envvar="AIFACTORY_OIDC_PROVIDERS",
            help="a TOML file of the identity providers people sign in with "
            "(docs/federated-access.md); default: local accounts only",
        ),
    ] = None,
) -> None:
    """Start a facility: API and control loop here; jobs on this machine (local executor) or
    on the Slurm cluster this machine is a client of (--executor slurm)."""
    # here, not at the top: the facility's own modules (pydantic, the executors, the
    # scheduler, the server) would slow every other command's start-up
    from pydantic import ValidationError

    from aifactory.config import Settings
    from aifactory.executors.sandbox.check import SandboxUnavailable
    from aifactory.executors.sandbox.software import SandboxConfigError
    from aifactory.executors.slurm.commands import SlurmError
    from aifactory.scheduler import policy_named
    from aifactory.server import build, serve
    from aifactory.services.federated.providers import ProvidersError

    if executor not in ("local", "slurm"):
        raise typer.BadParameter("must be local or slurm", param_hint="--executor")
    try:
        policy_named(policy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # each request to a session's server
    try:
        settings = Settings(
            host=host,
            port=port,
            data_dir=data_dir,
            virtual_gpus=virtual_gpus,
            executor=cast(Literal["local", "slurm"], executor),
            database_url=database_url,
            cpus=cpus,
            memory_mb=memory_mb,
            site=site,
            country=country,
            data_root=data_root,
            slurm_conf=slurm_conf,
            slurm_partition=slurm_partition,
            paused=paused,
            workers=workers,
            policy=policy,
            trusted_proxies=trusted_proxy or [],
            job_dirs=jobs_dir,
            open_network=allow_open_network,
            software_root=software_root,
            package_index=package_index,
            container_runtime=container_runtime,
            oidc_providers=oidc_providers,
        )
        if package_find_links:
            settings = settings.model_copy(update={"package_find_links": package_find_links})
        if sandbox_software:
            settings = settings.model_copy(update={"sandbox_software": sandbox_software})
        if workdir_root:
            settings = settings.model_copy(update={"sandbox_workdir_roots": workdir_root})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]).replace("_", "-") if first["loc"] else "site"
        raise typer.BadParameter(first["msg"], param_hint=f"--{where}") from None
    os.umask(0o077)  # the facility's files are its own: its database, journals, passwords
    try:
        facility = build(settings)
    except SlurmError as exc:
        typer.echo(f"error: the Slurm cluster cannot be reached: {exc}", err=True)
        raise typer.Exit(1) from None
    except (SandboxUnavailable, SandboxConfigError) as exc:
        typer.echo(f"error: no sandbox for jobs: {exc}", err=True)
        raise typer.Exit(1) from None
    except ProvidersError as exc:
        typer.echo(f"error: the sign-in providers: {exc}", err=True)
        raise typer.Exit(1) from None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if facility.admin_token:
        typer.echo(f"admin token: {facility.admin_token}")
        if not load():
            typer.echo(f"(saved for the CLI in {save(url, facility.admin_token)})")
    portal = portal_url(settings, url)
    _say_portal(portal, data_dir, facility.admin_password, first_start=bool(facility.admin_token))
    if facility.sandbox is not None:
        typer.echo(f"sandbox: {facility.sandbox.describe()}", err=True)
    typer.echo(
        f"aifactory is up at {url} (portal: {portal}/, API docs: {url}/api/v1/docs); data in "
        f"{data_dir.resolve()}; CLI config: {config_path()}",
        err=True,
    )
    serve(facility)


def portal_url(settings: Settings, url: str) -> str:
    """Where browsers reach the portal: `public_url`, else `url` on the sessions' domain when
    that is this machine's (`localhost`: sessions are s<ID>.localhost, and a session sends a
    visitor who is not signed in to the portal there: the same name keeps one sign-in)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    local = url.startswith(("http://127.0.0.1:", "http://localhost:"))
    if local and settings.sessions_domain == "localhost":
        return "http://localhost:" + url.rsplit(":", 1)[1]
    typer.echo(
        "warning: set AIFACTORY_PUBLIC_URL (the portal's address): sessions on "
        f"s<ID>.{settings.sessions_domain} send visitors who are not signed in there",
        err=True,
    )
    return url


def _say_portal(url: str, data_dir: Path, password: str | None, *, first_start: bool) -> None:
    """The portal's address; the first admin's password only on the start that made it (a
    terminal's scrollback and `make run`'s logs should not collect it), later where it is."""
    kept = (data_dir / "initial-admin-password").resolve()
    if password and first_start:
        typer.echo(
            f"portal: {url}/  user: admin  password: {password}  "
            f"(change it under 'Your account'; until then it is kept in {kept})"
        )
    elif password:
        typer.echo(
            f"portal: {url}/  user: admin, first password in {kept} until changed "
            "(an admin sets a new one: aifactory user password admin)"
        )
    else:
        typer.echo(
            f"portal: {url}/  (a forgotten password: an admin sets a new one with "
            "aifactory user password NAME; aifactory admin-token if no admin can sign in)"
        )


def admin_token(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="the facility's data dir")] = Path(
        ".aifactory"
    ),
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="AIFACTORY_DATABASE_URL")
    ] = None,
    user: Annotated[str, typer.Option(help="an admin user")] = "admin",
) -> None:
    """Issue a new API token for an admin, reading the facility's database directly.

    For operators who lost the first admin token: whoever can read the database can do this,
    so it needs no token. Run it on the facility's own machine.
    """
    from aifactory.config import Settings
    from aifactory.server import recover_admin_token

    settings = Settings(data_dir=data_dir, database_url=database_url)
    try:
        token = recover_admin_token(settings, user)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--user / --data-dir") from None
    typer.echo(f"admin token: {token}")


@facility_app.callback()
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Nodes, jobs by state and whether admission is paused."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.facility()
    if as_json:
        print_json(found)
        return
    table(
        "nodes",
        ["id", "site", "gpus", "model", "cpus", "memory MB", "schedulable"],
        [
            [
                n["id"],
                n["site"],
                n["gpus"],
                n["gpu_model"],
                n["cpus"],
                n["memory_mb"],
                n["schedulable"] if n.get("drained_at") is None else f"no: {drain_text(n)}",
            ]
            for n in found["nodes"]
        ],
    )
    states = ", ".join(f"{k} {v}" for k, v in sorted(found["jobs_by_state"].items()))
    typer.echo(
        f"jobs: {states or 'none'}; admission {'PAUSED' if found['admission_paused'] else 'open'}"
    )


@facility_app.command()
def pause(ctx: typer.Context) -> None:
    """Stop admitting new jobs (running jobs go on)."""
    with client(ctx) as api:
        api.set_admission(paused=True)
    typer.echo("admission paused")


@facility_app.command()
def resume(ctx: typer.Context) -> None:
    with client(ctx) as api:
        api.set_admission(paused=False)
    typer.echo("admission open")


@sites_app.callback()
def sites(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List sites with their country and number of nodes."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.sites()
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["site", "country", "nodes", "description"],
        [[s["name"], s["country"], s["nodes"], s["description"]] for s in found],
    )


@sites_app.command("set")
def set_site(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="SITE")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. NL")],
    description: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Define a site or correct its country (admins and operators)."""
    with client(ctx) as api:
        site = api.set_site(name, country=country.upper(), description=description)
    typer.echo(f"site {site['name']}: {site['country']} ({site['nodes']} node(s))")
