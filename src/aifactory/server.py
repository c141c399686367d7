"""The composition root: build a facility from `Settings` and run it in one process.

Embedded shape (DESIGN.md §6): migrations, first-start bootstrap, the local executor, the
control loop on a thread, and the API served by uvicorn. Stopping (SIGINT/SIGTERM) leaves the
jobs running under their supervisors; the next start reconciles them.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session

from aifactory.accounting.tokens import TokenBooker
from aifactory.api.app import DEFAULT_MAX_BODY, Background, create_app
from aifactory.cli.config import config_path as cli_config_path
from aifactory.config import Settings, port_range
from aifactory.control.builds import BuilderConfig, EnvironmentBuilder
from aifactory.control.deliveries import SmtpConfig
from aifactory.control.endpoints import EndpointScaler
from aifactory.control.interactive import SessionCuller
from aifactory.control.loop import ControlLoop
from aifactory.control.node_health import HealthCheck
from aifactory.control.notifier import Notifier, NotifierConfig
from aifactory.control.samples import Sampler
from aifactory.domain.tenancy import FacilityRole
from aifactory.executors.base import Executor
from aifactory.executors.health import AllOf, DiskSpace, HealthProbe, NodeControl, NvmlHealth
from aifactory.executors.job_socket import ServerFinder
from aifactory.executors.local import gpus
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from aifactory.executors.sandbox import check as sandbox_check
from aifactory.executors.sandbox.check import SandboxReport
from aifactory.executors.sandbox.identity import Identities, IdentityConfig
from aifactory.executors.sandbox.software import host_software
from aifactory.executors.slurm.commands import SlurmClient, SlurmConfig
from aifactory.executors.slurm.executor import SlurmExecutor, SlurmExecutorConfig
from aifactory.executors.slurm.nodes import SlurmNodes
from aifactory.faces.state import AppState
from aifactory.gateway import routes as gateway_routes
from aifactory.gateway.session_proxy import SessionProxy
from aifactory.governance import erasure
from aifactory.scheduler import Policy, policy_named
from aifactory.services import passwords
from aifactory.services.auth import issue_token
from aifactory.services.bootstrap import bootstrap
from aifactory.services.environments import BuildTarget
from aifactory.services.federated.oidc import OidcClient
from aifactory.services.federated.providers import ProviderConfig, load_providers
from aifactory.services.interactive import purge_passes
from aifactory.services.login import purge_sessions
from aifactory.services.metrics import ScrapeAccess
from aifactory.services.metrics_exposition import ProcessMetrics
from aifactory.software import layout
from aifactory.store import flags
from aifactory.store.db import Database, is_sqlite
from aifactory.store.migrate import upgrade
from aifactory.store.models import Site, User
from aifactory.store.sites import upsert_site
from aifactory.web import app as portal
from aifactory.web.errors import page_error

log = logging.getLogger("aifactory")
WORKER_SETTINGS = "AIFACTORY_WORKER_SETTINGS"


@dataclass
class Facility:
    settings: Settings
    db: Database
    executor: Executor
    loop: ControlLoop
    admin_token: str | None  # set only on the very first start
    # The first admin's portal password while it is still the first one (see first_password).
    admin_password: str | None = None
    clock: Callable[[], float] = time.time  # the API's and the control loop's one clock
    sandbox: SandboxReport | None = None  # the local sandbox as checked at the start
    builder: EnvironmentBuilder | None = None  # builds environments (control.builds)
    # The OpenID providers of settings.oidc_providers, checked at the start.
    sign_in_providers: tuple[ProviderConfig, ...] = ()
    notifier: Notifier | None = None  # sends the notifications' outbox (control.notifier)
    # This process's metrics: the control loop's ticks and the API's requests (/metrics).
    metrics: ProcessMetrics = field(default_factory=ProcessMetrics)


def build(settings: Settings, clock: Callable[[], float] = time.time) -> Facility:
    sandbox = check_sandbox() if settings.executor == "local" else None
    providers = load_providers(settings.oidc_providers) if settings.oidc_providers else ()
    keep_private(settings)
    url = settings.resolved_database_url
    upgrade(url)
    keep_private_database(url)
    db = Database(url)
    with db.session() as session:
        token = bootstrap(session, now=clock())
        password = first_password(session, settings.data_dir, first_start=token is not None)
        instance = flags.instance_id(session)
        # The site's country as configured; without --country an admin's correction stands.
        if settings.country is not None or session.get(Site, settings.site) is None:
            upsert_site(session, settings.site, settings.site_country, now=clock())
        if settings.paused:
            flags.set_admission_paused(session, True)
        flags.set_open_network(session, settings.open_network)
    executor = make_executor(settings, instance)
    executor.inventory()  # an executor that cannot reach its nodes fails here, plainly
    metrics = ProcessMetrics()
    loop = ControlLoop(
        db,
        executor,
        policy_from(settings),
        clock,
        tick_s=settings.tick_s,
        enforce_budgets=settings.enforce_budgets,
        housekeeping=housekeeping(
            settings, db, served=served_by(executor), health=node_health(settings, executor)
        ),
        software_dir=settings.software_dir,
        timed=metrics.loop_timed,
    )
    return Facility(
        settings,
        db,
        executor,
        loop,
        token,
        clock=clock,
        admin_password=password,
        sandbox=sandbox,
        builder=make_builder(settings, db, clock),
        sign_in_providers=providers,
        notifier=Notifier(db, notifier_config(settings), clock),
        metrics=metrics,
    )


def notifier_config(settings: Settings) -> NotifierConfig:
    smtp = None
    if settings.smtp_host:
        smtp = SmtpConfig(
            settings.smtp_host,
            settings.smtp_port_or_default,
            settings.smtp_tls,
            settings.smtp_from,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_timeout_s,
        )
    return NotifierConfig(smtp, tuple(settings.webhook_destinations), poll_s=settings.notify_poll_s)


def make_builder(
    settings: Settings, db: Database, clock: Callable[[], float]
) -> EnvironmentBuilder:
    """Builds run on this host, in the sandbox, as the builder's identity: project 0's, which
    no project has (the facility's own where it does not run as root)."""
    config = IdentityConfig.for_this_process(mode="project", uid_base=settings.sandbox_uid_base)
    identities = Identities(config)
    return EnvironmentBuilder(
        db,
        BuilderConfig(
            settings.software_dir,
            settings.package_index,
            tuple(settings.package_find_links),
            memory_mb=settings.build_memory_mb,
        ),
        identity=lambda: identities.of(0, "builder"),
        software=host_software(protected=[*protected_paths(settings), settings.jobs_dir]),
        clock=clock,
    )


def registry(settings: Settings) -> str | None:
    """Where builds take packages from, as it goes into a build's key: the index and the
    wheelhouses (a change of either is another build)."""
    if not settings.package_find_links:
        return settings.package_index
    links = " ".join(f"--find-links {p}" for p in settings.package_find_links)
    return f"{settings.package_index or '(pip default)'} {links}"


def keep_private(settings: Settings) -> None:
    """The facility's directories are closed to others (DESIGN §8; what it makes is 0600/0700
    by `aifactory up`'s umask). Slurm's nodes reach jobs' directories and datasets as the
    projects' identities, so there those directories are only traversable (0711: no listing;
    each job's own part is its identity's, 0700)."""
    slurm = settings.executor == "slurm"
    for path in (settings.data_dir, settings.datasets_dir):
        path.mkdir(parents=True, exist_ok=True)
    for path in (
        layout.environments_dir(settings.software_dir),
        layout.images_dir(settings.software_dir),
    ):
        path.mkdir(parents=True, exist_ok=True)  # software is no secret: nodes' jobs read it
        path.chmod(0o755)
        path.parent.chmod(0o755)
    shared = (settings.jobs_dir, settings.datasets_dir, settings.software_dir)
    reached = any(_inside(p, settings.data_dir) for p in shared)
    settings.data_dir.chmod(0o711 if slurm and reached else 0o700)
    settings.datasets_dir.chmod(0o711 if slurm else 0o700)
    if (settings.data_dir / FIRST_PASSWORD_FILE).exists():
        (settings.data_dir / FIRST_PASSWORD_FILE).chmod(0o600)


def keep_private_database(url: str) -> None:
    """SQLite's file and its journals: 0600."""
    if not is_sqlite(url):
        return
    database = Path(make_url(url).database or "")
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        if path.is_file():
            path.chmod(0o600)


def check_sandbox() -> SandboxReport:
    """Can this host make the sandbox every job runs in? A facility that cannot does not
    start (SandboxUnavailable says why and how to mend it)."""
    report = sandbox_check.check()
    if not report.identities:
        log.warning(
            "aifactory does not run as root: jobs run under its own uid (still sandboxed, and "
            "unable to see its files); run it as root for an identity per project"
        )
    return report


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def served_by(executor: Executor) -> ServerFinder | None:
    """Where the executor's jobs' servers are reached (a session's notebook server)."""
    if isinstance(executor, LocalExecutor | SlurmExecutor):
        return executor.served
    return None


def node_health(settings: Settings, executor: Executor) -> HealthProbe | None:
    """The probe of the executor's nodes (docs/operating.md); None: no health checks."""
    if settings.health_check_s <= 0:
        return None
    if isinstance(executor, SlurmExecutor):
        return SlurmNodes(executor.client, executor.config.partition)
    if not isinstance(executor, LocalExecutor):
        return None
    found = [] if settings.virtual_gpus is not None else [g.uuid for g in gpus.discover()]
    probes: list[HealthProbe] = [NvmlHealth(executor.node_id, found)]
    if settings.health_min_free_gb > 0:
        free = int(settings.health_min_free_gb * 1000**3)
        probes.append(DiskSpace(executor.node_id, settings.jobs_dir, free))
    return AllOf(*probes)


def node_control(executor: Executor) -> NodeControl | None:
    """Where an operator's drain goes besides the database: Slurm's own drain."""
    if isinstance(executor, SlurmExecutor):
        return SlurmNodes(executor.client, executor.config.partition)
    return None


def housekeeping(
    settings: Settings,
    db: Database,
    *,
    served: ServerFinder | None = None,
    health: HealthProbe | None = None,
) -> Callable[[float], None]:
    """What the acting control loop does each tick besides scheduling: erasures and
    retention, the dashboard's minute samples, the endpoints' replicas (each second), the
    gateway's tokens into the ledger (each hour that ended), idle interactive sessions (each
    10 s), ended browser sessions and session passes (hourly), and the nodes' health
    (`health`, every health_check_s: control.node_health)."""
    sample = Sampler(db, every_s=settings.sample_s)
    scale = EndpointScaler(db, settings.jobs_dir)
    cull = SessionCuller(db, settings.jobs_dir, served=served)
    book_tokens = TokenBooker(db)
    purged = [-1.0]

    def purge(now: float) -> None:
        if now - purged[0] >= SESSIONS_PURGE_EVERY_S:
            purged[0] = now
            with db.session() as session:
                purge_sessions(session, now=now)
                purge_passes(session, now=now)

    def advance(now: float) -> None:
        erasure.advance(db, now, data_root=settings.datasets_dir, jobs_dir=settings.jobs_dir)

    steps: tuple[Callable[[float], None], ...] = (advance, sample, scale, cull, book_tokens, purge)
    if health is not None:
        steps += (HealthCheck(db, health, every_s=settings.health_check_s),)

    def run(now: float) -> None:
        for step in steps:  # each on its own: one that fails leaves the others their turn
            try:
                step(now)
            except Exception:
                log.exception("housekeeping: %s failed", getattr(step, "__name__", step))

    return run


SESSIONS_PURGE_EVERY_S = 3600.0
SLURM_ENDPOINTS = (
    "this facility runs its jobs on Slurm, and a replica's engine listens on a Unix socket on "
    "its node, out of the gateway's reach: endpoints need the local executor for now "
    "(docs/inference.md)"
)
FIRST_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name


def first_password(session: Session, data_dir: Path, *, first_start: bool) -> str | None:
    """The first admin's portal password: made on the first start and kept (0600) in the data
    folder until the admin changes it (then the file goes): `aifactory up` prints it on the
    first start and says where it is kept on later ones. Whoever can read the data folder owns
    the facility anyway."""
    path = data_dir / FIRST_PASSWORD_FILE
    admin = session.scalars(select(User).where(User.name == "admin")).first()
    if first_start and admin is not None:
        password = passwords.generate_password(admin.name)
        passwords.set_password(session, admin, password, actor="bootstrap", now=time.time())
        path.touch(mode=0o600)
        path.chmod(0o600)  # touch's mode is for a new file only
        path.write_text(password + "\n", encoding="utf-8")
        return password
    if not path.is_file():
        return None
    password = path.read_text(encoding="utf-8").strip()
    if admin is None or not passwords.still_matches(admin, password):
        path.unlink()
        return None
    return password


def policy_from(settings: Settings) -> Policy:
    """The configured policy with the knobs the settings turn."""
    policy = policy_named(settings.policy)
    return replace(
        policy,
        half_life_s=settings.usage_half_life_s,
        fairshare=replace(
            policy.fairshare,
            starvation_after_s=settings.starvation_after_s,
            fairness_weight=settings.fairness_weight,
            preemption_grace_s=settings.grace_s,
        ),
    )


def recover_admin_token(settings: Settings, user_name: str) -> str:
    """A new token for an existing admin of an existing facility (see `aifactory admin-token`)."""
    url = settings.resolved_database_url
    if is_sqlite(url) and not Path(make_url(url).database or "").is_file():
        raise LookupError(f"no facility in {settings.data_dir.resolve()} (no {url})")
    db = Database(url)
    try:
        with db.session() as session:
            user = session.scalars(select(User).where(User.name == user_name)).first()
            if user is None or user.facility_role != FacilityRole.ADMIN.value:
                raise LookupError(f"no admin named {user_name!r} in this facility")
            return issue_token(session, user, name="recovered admin token", now=time.time())[1]
    finally:
        db.dispose()


def make_executor(settings: Settings, instance: str = "0") -> Executor:
    if settings.executor == "slurm":
        return SlurmExecutor(
            SlurmExecutorConfig(
                jobs_dir=settings.jobs_dir,
                site=settings.site,
                node_sites=settings.node_sites,
                partition=settings.slurm_partition,
                accounts=settings.slurm_accounts,
                grace_s=settings.grace_s,
                instance=instance,
                identities=identity_config(settings),
                software=settings.sandbox_software,
                workdir_roots=settings.sandbox_workdir_roots,
                open_network=settings.open_network,
                pids_max=settings.sandbox_pids_max,
                gpu_device_pattern=settings.gpu_device_pattern,
                relay_ports=port_range(settings.slurm_relay_ports),
                relay_from=settings.slurm_relay_from,
            ),
            SlurmClient(
                SlurmConfig(conf=str(settings.slurm_conf) if settings.slurm_conf else None)
            ),
        )
    return LocalExecutor(
        LocalConfig(
            jobs_dir=settings.jobs_dir,
            site=settings.site,
            virtual_gpus=settings.virtual_gpus,
            cpus=settings.cpus,
            memory_mb=settings.memory_mb,
            grace_s=settings.grace_s,
            identities=identity_config(settings),
            software=settings.sandbox_software,
            workdir_roots=settings.sandbox_workdir_roots,
            protected=protected_paths(settings),
            open_network=settings.open_network,
            pids_max=settings.sandbox_pids_max,
            virtual_gpu_devices=settings.virtual_gpu_devices,
            container_runtime=settings.container_runtime,
        )
    )


def identity_config(settings: Settings) -> IdentityConfig:
    return IdentityConfig.for_this_process(
        mode=settings.sandbox_identity,
        uid_base=settings.sandbox_uid_base,
        name_template=settings.sandbox_user_template,
    )


def protected_paths(settings: Settings) -> list[Path]:
    """What no job may see: the facility's data, its datasets' root and its CLI config."""
    return [settings.data_dir.resolve(), settings.datasets_dir, cli_config_path().parent]


def serve(facility: Facility) -> None:
    """Serve the API (and run the control loop) until SIGINT/SIGTERM.

    With `workers > 1`, uvicorn starts that many worker processes; each runs the API and a
    control loop, and the database lease lets exactly one of those loops act at a time.
    """
    settings = facility.settings
    if settings.workers > 1:
        if is_sqlite(facility.db.url):
            log.warning(
                "%d workers share SQLite's single write lock across processes, which "
                "makes latency spiky; use PostgreSQL for several workers",
                settings.workers,
            )
        facility.db.dispose()
        os.environ[WORKER_SETTINGS] = settings.model_dump_json()  # handed to the workers
        uvicorn.run(
            "aifactory.server:worker_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            proxy_headers=bool(settings.trusted_proxies),  # uvicorn's default trusts 127.0.0.1
            forwarded_allow_ips=",".join(settings.trusted_proxies),
            log_level="warning",
            access_log=False,
        )
        return
    config = uvicorn.Config(
        app_for(facility),
        host=settings.host,
        port=settings.port,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies),
        log_level="warning",
        access_log=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        facility.db.dispose()


def worker_app() -> FastAPI:
    """One worker process of a multi-worker facility (see `serve`)."""
    settings = Settings.model_validate_json(os.environ[WORKER_SETTINGS])
    return app_for(build(settings.model_copy(update={"paused": False})))


def app_for(facility: Facility) -> FastAPI:
    state = AppState(
        db=facility.db,
        clock=facility.clock,
        locate_log=facility.executor.log_path,
        on_submit=facility.loop.wake,
        ready=lambda: True,
        policy=facility.loop.policy,
        vat_pct=facility.settings.vat_pct,
        grid_g_per_kwh=facility.settings.grid_g_per_kwh,
        data_root=facility.settings.datasets_dir,
        jobs_dir=facility.settings.jobs_dir,
        software_dir=facility.settings.software_dir,
        build_target=BuildTarget.of_this_host(registry(facility.settings)),
        wake_builder=facility.builder.wake if facility.builder else lambda: None,
        gateway_cold_start_s=facility.settings.gateway_cold_start_s,
        gateway_queue_s=facility.settings.gateway_queue_s,
        endpoints_refused=SLURM_ENDPOINTS if facility.settings.executor == "slurm" else None,
        served=served_by(facility.executor),
        session_python=str(facility.settings.session_python or sys.executable),
        sessions_domain=facility.settings.sessions_domain,
        open_shell=(
            facility.executor.open_shell
            if isinstance(facility.executor, LocalExecutor | SlurmExecutor)
            else None
        ),
        public_url=facility.settings.public_url,
        sign_in={p.name: OidcClient(p) for p in facility.sign_in_providers},
        webhook_destinations=tuple(facility.settings.webhook_destinations),
        node_control=node_control(facility.executor),
        metrics_access=ScrapeAccess(
            facility.settings.metrics_token, tuple(facility.settings.metrics_from)
        ),
        process_metrics=facility.metrics,
    )
    app = facility_app(
        state,
        max_body_bytes=facility.settings.max_body_bytes,
        background=lambda: _control_loop_running(
            facility.loop, facility.builder, facility.notifier
        ),
    )
    gc.collect()
    gc.freeze()  # start-up objects never need collecting: keeps collections short
    return app


def facility_app(
    state: AppState, *, max_body_bytes: int = DEFAULT_MAX_BODY, background: Background | None = None
) -> FastAPI:
    """The faces on one app: the API under /api/, the OpenAI-compatible gateway under /v1, and
    the portal on every other path, where an error is answered as a page."""
    app = create_app(
        state,
        max_body_bytes=max_body_bytes,
        background=_with_gateway(state, background),
        pages=page_error,
    )
    app.include_router(gateway_routes.router)  # /v1: the OpenAI-compatible gateway
    portal.install(app)
    app.add_middleware(SessionProxy, state=state)  # outermost: sessions' own origins
    return app


def _with_gateway(state: AppState, background: Background | None) -> Background:
    """`background`, and the gateway's connections to engines closed when the app stops."""

    @contextmanager
    def running() -> Iterator[None]:
        try:
            with background() if background else nullcontext():
                yield
        finally:
            if state.jobs_dir is not None:
                gateway_routes.close_engines(state.jobs_dir)

    return running


@contextmanager
def _control_loop_running(
    loop: ControlLoop, builder: EnvironmentBuilder | None = None, notifier: Notifier | None = None
) -> Iterator[None]:
    """Reconcile and register nodes before the first request, then loop on a thread (and
    build environments on another)."""
    loop.tick()
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), name="control-loop", daemon=True)
    thread.start()
    building = None
    if notifier is not None:  # never in the loop's way: it only reads and sends the outbox
        threading.Thread(target=notifier.run, args=(stop,), name="notifier", daemon=True).start()
    if builder is not None:
        building = threading.Thread(target=builder.run, args=(stop,), name="builds", daemon=True)
        building.start()
    try:
        yield
    finally:
        stop.set()
        loop.wake()
        thread.join(timeout=5)
        loop.release()
        if builder is not None and building is not None:
            builder.wake()
            building.join(timeout=1)
