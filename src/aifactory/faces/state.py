"""The app state both faces read, and the request dependencies over it: the state itself, a
read session and a write session."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from aifactory.executors.health import NodeControl
from aifactory.executors.job_socket import JobServer, ServerFinder, sockets_in
from aifactory.faces.group_commit import GroupCommitter
from aifactory.faces.principal_cache import PrincipalCache
from aifactory.scheduler import Policy
from aifactory.services.environments import BuildTarget
from aifactory.services.federated.oidc import OidcClient
from aifactory.services.job_shell import ShellOpener
from aifactory.services.jobs import LogLocator
from aifactory.services.metrics import ScrapeAccess
from aifactory.services.metrics_exposition import ProcessMetrics
from aifactory.services.session import Database, Session


@dataclass
class AppState:
    """What the composition root wires in; handlers reach it only through the aliases below."""

    db: Database
    clock: Callable[[], float]
    locate_log: LogLocator
    on_submit: Callable[[], None]
    ready: Callable[[], bool]
    policy: Policy = field(default_factory=Policy)  # the control loop's: explanations use it
    vat_pct: int = 21  # config.Settings.vat_pct: VAT on the invoices issued
    grid_g_per_kwh: float = 270.0  # config.Settings.grid_g_per_kwh: CO2 in usage and reports
    auth_cache_s: float = 2.0
    # config.Settings.datasets_dir / jobs_dir: where datasets lie (none may be outside) and
    # where jobs' directories are (exports and erasures reach them). None: no data facility.
    data_root: Path | None = None
    jobs_dir: Path | None = None
    # config.Settings.software_dir and what builds depend on (services.environments); None:
    # a facility that keeps no environments or images.
    software_dir: Path | None = None
    build_target: BuildTarget = field(default_factory=BuildTarget.of_this_host)
    wake_builder: Callable[[], None] = lambda: None
    # config.Settings.gateway_cold_start_s / gateway_queue_s: how long a request at `/v1`
    # waits for a replica to start, and for a busy one to free up (gateway.routes).
    gateway_cold_start_s: float = 300.0
    gateway_queue_s: float = 30.0
    # Why this facility serves no endpoints (a Slurm facility: a node's Unix socket is out of the
    # gateway's reach), or None.
    endpoints_refused: str | None = None
    # config.Settings.session_python: the Python (with JupyterLab) sessions run without an
    # environment of their own.
    session_python: str = sys.executable
    # Where a session's notebook server is reached (the executor's `served`: a socket here,
    # a relay on a Slurm node); None: its socket in the job's directory under `jobs_dir`.
    served: ServerFinder | None = None
    # config.Settings.sessions_domain / public_url: the interactive sessions' own origins
    # (s<ID>.<domain>) and where the portal is (gateway.session_proxy).
    sessions_domain: str = "localhost"
    public_url: str | None = None
    # Starts a command in a running job's sandbox (the local executor's); None: this
    # facility's executor cannot (Slurm, for now), and `exec`/`attach` are refused.
    open_shell: ShellOpener | None = None
    # Passes operators' node drains to the executor (`scontrol` on Slurm); None: the
    # facility's own placement is all there is (services.nodes).
    node_control: NodeControl | None = None
    # config.Settings.webhook_destinations: where people's webhooks may go (none: nowhere).
    webhook_destinations: tuple[str, ...] = ()
    # config.Settings.oidc_providers: the OpenID providers people sign in with, by name.
    sign_in: dict[str, OidcClient] = field(default_factory=dict)
    # config.Settings.metrics_token / metrics_from: who may scrape /metrics; and this process's
    # own metrics (its requests, its control loop's ticks), which the composition root shares.
    metrics_access: ScrapeAccess = field(default_factory=ScrapeAccess)
    process_metrics: ProcessMetrics = field(default_factory=ProcessMetrics)
    principals: PrincipalCache = field(init=False)
    committer: GroupCommitter = field(init=False)

    def session_server(self, job_id: int, attempt: int, socket: str) -> JobServer | None:
        if self.served is not None:
            return self.served(job_id, attempt, socket)
        if self.jobs_dir is None:
            return None
        return sockets_in(self.jobs_dir)(job_id, attempt, socket)

    def __post_init__(self) -> None:
        self.principals = PrincipalCache(ttl_s=self.auth_cache_s)
        self.committer = GroupCommitter(self.db, self.clock, self.on_submit)


async def app_state(request: Request) -> AppState:
    """async: a plain `def` dependency costs a thread-pool round trip on every request."""
    state: AppState = request.app.state.aifactory
    return state


StateDep = Annotated[AppState, Depends(app_state)]


def write_session(state: StateDep) -> Iterator[Session]:
    """A write transaction; a handler may leave a hook in `session.info["after_commit"]`."""
    with state.db.session() as session:
        yield session
    state.principals.clear()  # tokens, members or users may have changed
    hook = session.info.get("after_commit")
    if hook is not None:
        hook()


def read_session(state: StateDep) -> Iterator[Session]:
    with state.db.read() as session:
        yield session


# scope="function": commit before the response goes out, so a 201 means it is stored.
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
ReadSession = Annotated[Session, Depends(read_session, scope="function")]
