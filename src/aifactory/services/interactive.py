"""Interactive sessions (issue 20): JupyterLab on the facility's GPUs, reached only through it.

A session is an ordinary job of its project (the same scheduler, quotas, budgets, sandbox,
dataset grants and metering) whose command runs JupyterLab on a Unix socket in the job's own
directory (domain.interactive.SOCKET), with a random token of its own that the facility's
proxy adds to every request it passes on: the server takes no connection from anywhere else.

Each session has its own web origin (`s<ID>.<sessions domain>`), so what its server sends a
browser (the project's code) cannot act on the portal or on another session in that browser:
the portal's cookie is not sent there. A browser gets in by a one-use ticket that the portal
(or the API) makes for someone who may use the session, traded on the session's origin for a
cookie of that origin alone (gateway.session_proxy). Who may use one (Action.SESSION_USE):
the one who started it, and the project's owners; each use is checked again on every request
(trusted 10 s at most), and ends with the sign-in or API token it came from.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from aifactory.accounting.budget import tariff_of
from aifactory.domain import interactive
from aifactory.domain.interactive import Activity, SessionSpec, idleness
from aifactory.domain.jobs import ACTIVE, JobSpec, JobState
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import cost_cents, ms_of_seconds
from aifactory.domain.permissions import Action, Role
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.governance import audit
from aifactory.services.auth import hash_token, principal_of
from aifactory.services.gateway import price_of
from aifactory.services.jobs import cancel_job, get_job, submit_job
from aifactory.services.principal import Principal
from aifactory.store.models import (
    Allocation,
    ApiToken,
    Dataset,
    InteractiveSession,
    Job,
    JobDataset,
    LedgerEntry,
    Programme,
    Project,
    SessionPass,
    User,
    WebSession,
)

TICKET_S = 60.0  # a ticket is traded within a minute, once
PASS_S = 12 * 3600.0  # the cookie of a session's origin, at most (its sign-in may end sooner)
TICKET, COOKIE = "ticket", "cookie"
# JupyterLab on the job's socket, under the session's base path, with no call out of the
# facility (news, update checks, the extension manager's index): the sandbox has no network.
NOTEBOOK_SCRIPT = (
    'exec "$0" -m jupyterlab --no-browser --ServerApp.sock="$1" --ServerApp.sock_mode=0600 '
    '--ServerApp.allow_remote_access=True --ServerApp.base_url="/sessions/$AIFACTORY_JOB_ID/" '
    "--ServerApp.root_dir=. --LabApp.extension_manager=readonly --LabApp.news_url=None "
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"
)


@dataclass(frozen=True, slots=True)
class SessionView:
    id: int  # its job's
    project: str
    kind: str
    owner: str
    state: str
    state_reason: str | None
    gpus: int
    cpus: int
    memory_mb: int
    datasets: list[str] = field(default_factory=list)
    environment: str | None = None
    submitted_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    time_limit_s: int = 0
    idle_timeout_s: float = 0.0
    ready: bool = False  # its server has answered the facility
    idle_for_s: float | None = None  # while it runs
    busy: bool = False  # a kernel runs or a client is connected
    stopping: bool = False
    culled_reason: str | None = None
    cost_cents: int = 0  # its GPU and CPU time so far at its programme's tariff (no subsidy)

    @property
    def active(self) -> bool:
        return JobState(self.state) in ACTIVE

    def time_left_s(self, now: float) -> float | None:
        if self.started_at is None or not self.active:
            return None
        return max(0.0, self.started_at + self.time_limit_s - now)

    def cull_in_s(self) -> float | None:
        """How long it may stay idle before it is stopped (None: not running, or in use)."""
        if self.idle_for_s is None or self.busy:
            return None
        return max(0.0, self.idle_timeout_s - self.idle_for_s)


@dataclass(frozen=True, slots=True)
class Route:
    """Whose session's server (its job's attempt) the proxy passes requests to, with its
    token, for whom."""

    job_id: int
    attempt: int
    token: str
    user: str


def start_session(
    session: Session,
    principal: Principal,
    spec: SessionSpec,
    *,
    now: float,
    idempotency_key: str | None = None,
    python: str = sys.executable,
) -> SessionView:
    """Submit the session's job: JupyterLab in the job's sandbox, on its own socket; run by
    `python` (the facility's, mounted read-only in the sandbox) or its environment's."""
    _check(spec)
    token = secrets.token_hex(32)
    job_spec = JobSpec(
        name=f"{spec.kind.value}-session",
        command=(
            "sh",
            "-c",
            NOTEBOOK_SCRIPT,
            "python" if spec.environment else python,
            interactive.SOCKET,
        ),
        env={interactive.TOKEN_ENV: token},
        gpus_per_node=spec.gpus,
        cpus_per_node=spec.cpus,
        memory_mb_per_node=spec.memory_mb,
        gpu_model=spec.gpu_model,
        time_limit_s=spec.time_limit_s,
        preemptible=False,  # someone is working in it
        datasets=spec.datasets,
        environment=spec.environment,
    )
    submitted = submit_job(
        session,
        principal,
        job_spec,
        project=spec.project,
        idempotency_key=idempotency_key,
        now=now,
    )
    job = session.get(Job, submitted.job.id)
    assert job is not None
    if submitted.created:
        session.add(
            InteractiveSession(
                job_id=job.id,
                project_id=job.project_id,
                kind=spec.kind.value,
                idle_timeout_s=spec.idle_timeout_s,
                notebook_token=token,
                created_by=principal.name,
                created_at=now,
            )
        )
        session.flush()
    found = session.get(InteractiveSession, job.id)
    if found is None:
        raise Conflict("that idempotency key names a job that is not a session", field="key")
    return _view(session, job, found, now)


def _check(spec: SessionSpec) -> None:
    if not interactive.MIN_IDLE_S <= spec.idle_timeout_s <= interactive.MAX_IDLE_S:
        raise InvalidInput(
            f"must be from {interactive.MIN_IDLE_S:.0f} to {interactive.MAX_IDLE_S:.0f} seconds",
            field="idle_timeout_s",
        )
    if spec.environment is None and importlib.util.find_spec("jupyterlab") is None:
        raise InvalidInput(
            "this facility's Python has no JupyterLab (aifactory[sessions]): name an "
            "environment that has the package jupyterlab",
            field="environment",
        )


def list_sessions(
    session: Session, principal: Principal, *, now: float, project: str | None = None
) -> list[SessionView]:
    """The sessions of the projects they may see jobs of (newest first)."""
    stmt = (
        select(Job, InteractiveSession)
        .join(InteractiveSession, InteractiveSession.job_id == Job.id)
        .order_by(Job.id.desc())
        .limit(500)
    )
    reach = principal.projects_for(Action.JOB_READ)
    if reach is not None:
        stmt = stmt.where(Job.project_id.in_(reach))
    if project is not None:
        stmt = stmt.join(Project, Project.id == Job.project_id).where(Project.name == project)
    return [_view(session, job, row, now) for job, row in session.execute(stmt)]


def show_session(session: Session, principal: Principal, job_id: int, *, now: float) -> SessionView:
    job, row = _found(session, principal, job_id)
    return _view(session, job, row, now)


def stop_session(session: Session, principal: Principal, job_id: int, *, now: float) -> SessionView:
    """Stop it as a job is cancelled (SIGTERM, then the grace): its GPUs go back."""
    _found(session, principal, job_id)
    cancel_job(session, principal, job_id, now=now)
    return show_session(session, principal, job_id, now=now)


def _found(session: Session, principal: Principal, job_id: int) -> tuple[Job, InteractiveSession]:
    try:
        job = get_job(session, principal, job_id)
    except NotFound:
        raise NotFound(f"session {job_id} not found", field="session_id") from None
    row = session.get(InteractiveSession, job_id)
    if row is None:
        raise NotFound(f"session {job_id} not found (job {job_id} is not a session)")
    return job, row


def _may_use(session: Session, principal: Principal, job_id: int) -> Job:
    """The session's job, if they may open it: the one who started it, or an owner of its
    project (SESSION_USE: owners and members; a member only their own)."""
    row = session.get(InteractiveSession, job_id)
    job = session.get(Job, job_id)
    if row is None or job is None or not principal.may(Action.JOB_READ, job.project_id):
        raise NotFound(f"session {job_id} not found", field="session_id")
    principal.authorize(Action.SESSION_USE, job.project_id, what="session", seen=True)
    if row.created_by != principal.name and Role.OWNER not in principal.roles(job.project_id):
        raise NotFound(f"session {job_id} not found", field="session_id")
    return job


def open_ticket(
    session: Session,
    principal: Principal,
    job_id: int,
    *,
    now: float,
    web_session_id: int | None = None,
    api_token_hash: str | None = None,
) -> str:
    """A one-use ticket into the session's origin (gateway.session_proxy trades it for a
    cookie there); refused while the session does not run."""
    job = _may_use(session, principal, job_id)
    if JobState(job.state) is not JobState.RUNNING or job.cancel_requested:
        now_is = "being stopped" if job.cancel_requested else job.state.lower()
        raise Conflict(
            f"session {job_id} is {now_is}: it can be opened while it runs", field="session_id"
        )
    plain = secrets.token_urlsafe(32)
    token_id = None
    if api_token_hash is not None:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.token_hash == api_token_hash))
    session.add(
        SessionPass(
            token_hash=hash_token(plain),
            job_id=job_id,
            user_id=principal.user_id,
            kind=TICKET,
            expires_at=now + TICKET_S,
            web_session_id=web_session_id,
            api_token_id=token_id,
        )
    )
    audit.record(
        session,
        actor=principal.name,
        action="session.open",
        object=f"job:{job_id}",
        source=principal.source,
        project_id=job.project_id,
        at=now,
    )
    return plain


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket opens, said before it is used: whose session, and as whom."""

    job_id: int
    project: str
    kind: str
    owner: str  # who started the session
    user: str  # who the ticket lets in: the browser acts as them there


def ticket_of(session: Session, ticket: str, job_id: int, *, now: float) -> Ticket:
    """The ticket, if it is live and for this session (NotFound otherwise); not used up."""
    found = _live_ticket(session, ticket, job_id, now, lock=False)
    row = session.get(InteractiveSession, job_id)
    user = session.get(User, found.user_id)
    if row is None or user is None:
        raise NotFound("this link opens no session")
    project = session.get(Project, row.project_id)
    return Ticket(job_id, project.name if project else "?", row.kind, row.created_by, user.name)


def _live_ticket(
    session: Session, ticket: str, job_id: int, now: float, *, lock: bool
) -> SessionPass:
    stmt = select(SessionPass).where(
        SessionPass.token_hash == hash_token(ticket), SessionPass.kind == TICKET
    )
    found = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if (
        found is None
        or found.job_id != job_id
        or found.used_at is not None
        or found.expires_at <= now
    ):
        raise NotFound("this link into the session has been used or has expired: open it again")
    return found


def enter(session: Session, ticket: str, job_id: int, *, now: float) -> str:
    """Trade a ticket for the cookie of the session's origin (once, within its minute)."""
    found = _live_ticket(session, ticket, job_id, now, lock=True)
    found.used_at = now
    plain = secrets.token_urlsafe(32)
    session.add(
        SessionPass(
            token_hash=hash_token(plain),
            job_id=job_id,
            user_id=found.user_id,
            kind=COOKIE,
            expires_at=now + PASS_S,
            web_session_id=found.web_session_id,
            api_token_id=found.api_token_id,
        )
    )
    return plain


def route_by_cookie(session: Session, cookie: str, job_id: int, *, now: float) -> Route | None:
    """Where the request of the holder of this cookie goes, if it still lets them in: the pass
    is live, what it came from (sign-in, API token) too, and they may still use the session."""
    found = session.execute(
        select(SessionPass, User)
        .join(User, User.id == SessionPass.user_id)
        .where(SessionPass.token_hash == hash_token(cookie), SessionPass.kind == COOKIE)
    ).first()
    if found is None:
        return None
    grant, user = found
    if grant.job_id != job_id or grant.expires_at <= now or not _source_live(session, grant, now):
        return None
    return _route(session, principal_of(session, user), job_id)


def route_for(session: Session, principal: Principal, job_id: int) -> Route | None:
    """Where an API client's request goes (a bearer token on the session's origin)."""
    return _route(session, principal, job_id)


def _route(session: Session, principal: Principal, job_id: int) -> Route | None:
    try:
        job = _may_use(session, principal, job_id)
    except (NotFound, PermissionDenied):
        return None
    row = session.get(InteractiveSession, job_id)
    if row is None or JobState(job.state) is not JobState.RUNNING:
        return None
    return Route(job_id, job.attempts, row.notebook_token, principal.name)


def _source_live(session: Session, grant: SessionPass, now: float) -> bool:
    if grant.web_session_id is not None:
        web = session.get(WebSession, grant.web_session_id)
        if web is None or web.revoked_at is not None or web.expires_at <= now:
            return False
    if grant.api_token_id is not None:
        token = session.get(ApiToken, grant.api_token_id)
        if token is None or token.revoked_at is not None:
            return False
        if token.expires_at is not None and token.expires_at <= now:
            return False
    return True


def purge_passes(session: Session, *, now: float) -> None:
    session.execute(delete(SessionPass).where(SessionPass.expires_at <= now))


def _view(session: Session, job: Job, row: InteractiveSession, now: float) -> SessionView:
    project = session.get(Project, job.project_id)
    running = JobState(job.state) is JobState.RUNNING and job.started_at is not None
    idle = None
    if running:
        assert job.started_at is not None
        seen = Activity(row.last_activity_at, row.connections, row.busy_kernels)
        idle = idleness(seen if row.checked_at is not None else None, started_at=job.started_at)
    return SessionView(
        id=job.id,
        project=project.name if project else "?",
        kind=row.kind,
        owner=row.created_by,
        state=job.state,
        state_reason=job.state_reason,
        gpus=job.gpus_per_node * job.nodes,
        cpus=job.cpus_per_node * job.nodes,
        memory_mb=job.memory_mb_per_node,
        datasets=_datasets(session, job.id),
        environment=job.environment,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        time_limit_s=job.time_limit_s,
        idle_timeout_s=row.idle_timeout_s,
        ready=running and row.checked_at is not None,
        idle_for_s=idle.idle_for(now) if idle is not None else None,
        busy=idle.busy if idle is not None else False,
        stopping=job.cancel_requested,
        culled_reason=row.culled_reason,
        cost_cents=_cost_so_far(session, job, now),
    )


def _cost_so_far(session: Session, job: Job, now: float) -> int:
    """What its attempts cost: those settled as the ledger has them, the running one at the
    tariff of the programme that reserved it (else of the project's payer now), before any
    subsidy, as a charge is."""
    settled = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.cost_cents), 0)).where(
            LedgerEntry.job_id == job.id, LedgerEntry.kind == EntryKind.SETTLE.value
        )
    )
    total = int(settled or 0)
    if JobState(job.state) not in ACTIVE or job.started_at is None:
        return total
    programme = session.execute(
        select(Programme)
        .join(Allocation, Allocation.programme_id == Programme.id)
        .join(LedgerEntry, LedgerEntry.allocation_id == Allocation.id)
        .where(LedgerEntry.job_id == job.id)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    ).scalar()
    if programme is None:  # not reserved (budgets not enforced): the project's payer now
        payer = price_of(session, job.project_id, now).allocation_id
        allocation = session.get(Allocation, payer) if payer is not None else None
        programme = session.get(Programme, allocation.programme_id) if allocation else None
    if programme is None:
        return total
    tariff = tariff_of(programme)
    ms = ms_of_seconds(max(0.0, now - job.started_at))
    gpus, cpus = job.gpus_per_node * job.nodes, job.cpus_per_node * job.nodes
    per_hour = tariff.per_gpu_hour(job.gpu_model) * gpus + tariff.cpu_hour * cpus
    return total + cost_cents(ms, Decimal(per_hour))


def _datasets(session: Session, job_id: int) -> list[str]:
    rows = session.execute(
        select(Dataset.name)
        .join(JobDataset, JobDataset.dataset_id == Dataset.id)
        .where(JobDataset.job_id == job_id)
        .order_by(Dataset.name)
    )
    return [name for (name,) in rows]
