"""The idle culler, on the acting control loop: every `every_s`, ask each running session's
notebook server what it did last (kernels, terminals, API calls) and whether a kernel is busy
or connected; record it (the session page's "idle for"), and stop a session idle for its
timeout as a cancel does (SIGTERM, grace), with the reason on the session and its job.

The servers are the projects' code: each is asked over its own socket (executors.job_socket;
on Slurm, through its node's relay), on probe threads, for at most `PROBE_S`, outside any
transaction; what they answered is recorded the next round. A server that does not answer
tells nothing new: what it said last holds for `STALE_ROUNDS` rounds, then only that it was
in use until it last answered (idle since its start if it never did). A crash between rounds
loses nothing: the next asks again.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain import interactive, notices
from aifactory.domain.interactive import Activity, cull_reason, idleness
from aifactory.domain.jobs import JobState
from aifactory.executors.job_socket import JobServer, ServerFinder, connect, sockets_in
from aifactory.governance import audit
from aifactory.governance.removal import stop_jobs
from aifactory.store import outbox
from aifactory.store.db import Database
from aifactory.store.jobs import lock_job
from aifactory.store.models import InteractiveSession, Job, Project

log = logging.getLogger("aifactory.sessions")
ACTOR = "idle culler"
PROBE_S = 3.0
MAX_ANSWER = 1024 * 1024
MAX_COUNT = 1_000_000
STALE_ROUNDS = 3
QUIET = "no_track_activity=1"
SOON_S = 1.0  # how often a session whose server has not answered yet is asked


@dataclass(frozen=True, slots=True)
class Running:
    job_id: int
    started_at: float
    server: JobServer | None  # None: not reachable yet (its relay has not said its port)
    token: str


Probe = Callable[[Running], Activity | None]


class SessionCuller:
    def __init__(
        self,
        db: Database,
        jobs_dir: Path,
        *,
        every_s: float = 10.0,
        probe: Probe | None = None,
        served: ServerFinder | None = None,
    ) -> None:
        self.db = db
        self.served = served or sockets_in(jobs_dir)  # default: the sockets on this host
        self.every_s = every_s
        self.probe = probe or ask_server
        self._last = float("-inf")
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="session-probe")
        self._asked: dict[int, Future[Activity | None]] = {}
        self._asked_at: dict[int, float] = {}

    def __call__(self, now: float) -> None:
        """Record what the servers answered since the last round, cull, and ask again: the
        loop never waits for a server (one that hangs holds a probe thread, for `PROBE_S`).
        A session whose server has not answered yet is asked each second (it is "ready"
        within moments of its start); the others each `every_s`."""
        if now - self._last < SOON_S:
            return
        self._last = now
        answered = {
            job_id: future.result()
            for job_id, future in self._asked.items()
            if future.done() and future.exception() is None
        }
        waiting = {j: f for j, f in self._asked.items() if not f.done()}
        self._asked = waiting  # what was answered is taken, whatever happens next
        running = self._running()
        due = []
        if running:
            with self.db.session() as session:
                for one in running:
                    fresh = _record_apart(session, one, answered.get(one.job_id), now, self.every_s)
                    if one.job_id not in waiting and (
                        not fresh or now - self._asked_at.get(one.job_id, -1e18) >= self.every_s
                    ):
                        due.append(one)
        for one in due:
            self._asked_at[one.job_id] = now
        self._asked = waiting | {r.job_id: self._pool.submit(self.probe, r) for r in due}
        alive = {r.job_id for r in running}
        self._asked_at = {j: t for j, t in self._asked_at.items() if j in alive}

    def _running(self) -> list[Running]:
        with self.db.read() as session:
            rows = session.execute(
                select(Job.id, Job.attempts, Job.started_at, InteractiveSession.notebook_token)
                .join(InteractiveSession, InteractiveSession.job_id == Job.id)
                .where(Job.state == JobState.RUNNING.value, Job.cancel_requested.is_(False))
            ).all()
        return [
            Running(job_id, started_at or 0.0, self._server(job_id, attempt), token)
            for job_id, attempt, started_at, token in rows
        ]

    def _server(self, job_id: int, attempt: int) -> JobServer | None:
        try:
            return self.served(job_id, attempt, interactive.SOCKET)
        except (OSError, ValueError):  # its relay's keys unreadable: not reachable
            return None


def _record_apart(
    session: Session, running: Running, said: Activity | None, now: float, every_s: float
) -> bool:
    """`_record` in a savepoint of its own: one session whose record fails (what its server
    said, or its state) leaves the others' and the round's."""
    try:
        with session.begin_nested():
            return _record(session, running, said, now, every_s)
    except Exception:
        log.exception("session %d: could not record what its server said", running.job_id)
        return True


def _record(
    session: Session, running: Running, said: Activity | None, now: float, every_s: float
) -> bool:
    """Keep what its server said, and stop it if it has been idle too long; whether its
    server has ever answered."""
    row = session.get(InteractiveSession, running.job_id)
    starting = said is None and row is not None and row.checked_at is None
    if starting and row is not None and now - running.started_at < row.idle_timeout_s:
        return False  # still starting: nothing to record, nothing to cull yet
    job = lock_job(session, running.job_id)
    if row is None or job is None or job.state != JobState.RUNNING.value or job.cancel_requested:
        return True
    if said is not None:
        row.checked_at = now
        claimed = said.last_activity_at
        row.last_activity_at = min(claimed, now) if claimed is not None else None
        row.connections = said.connections
        row.busy_kernels = said.busy_kernels
    seen = _seen(row, now, every_s)
    idle = idleness(seen, started_at=running.started_at)
    reason = cull_reason(idle, idle_timeout_s=row.idle_timeout_s, now=now)
    if reason is None:
        return row.checked_at is not None
    row.culled_reason = reason
    stopped = stop_jobs(session, [job], why=reason, now=now, actor=ACTOR)
    _tell(session, row, reason, now=now)
    audit.append(session, stopped.events, at=now)
    log.info("session %d: %s", running.job_id, reason)
    return True


def _tell(session: Session, row: InteractiveSession, reason: str, *, now: float) -> None:
    """Who started the session hears why it was stopped (store.outbox)."""
    project = session.get(Project, row.project_id)
    notice = notices.session_culled(row.job_id, project.name if project else "", reason)
    outbox.notify(session, notice, outbox.user_named(session, row.created_by), now=now)


def _seen(row: InteractiveSession, now: float, every_s: float) -> Activity | None:
    """What it last said; once that is stale (its server stopped answering), only that it
    was in use until it last answered."""
    if row.checked_at is None:
        return None
    if now - row.checked_at > STALE_ROUNDS * every_s:
        return Activity(max(row.last_activity_at or 0.0, row.checked_at))
    return Activity(row.last_activity_at, row.connections, row.busy_kernels)


def ask_server(running: Running) -> Activity | None:
    """What the session's server says of itself (`/api/status`, `/api/kernels`), or None:
    both asked within `PROBE_S` in all, whatever the server does (it is the project's code)."""
    deadline = time.monotonic() + PROBE_S
    base = interactive.base_path(running.job_id)
    try:
        # asking is no activity (the server counts API calls, but not with this flag)
        status = _get(running, f"{base}api/status?{QUIET}", deadline)
        kernels = _get(running, f"{base}api/kernels?{QUIET}", deadline)
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or not isinstance(kernels, list):
        return None
    busy = sum(1 for k in kernels if isinstance(k, dict) and k.get("execution_state") == "busy")
    return Activity(
        _moment(status.get("last_activity")),
        connections=_count(status.get("connections")),
        busy_kernels=min(busy, MAX_COUNT),
    )


def _get(running: Running, target: str, deadline: float) -> object:
    """One HTTP/1.0 GET on the server's own socket (it closes after answering), read to its
    end before `deadline`; its JSON body."""
    if running.server is None:
        raise OSError("not reachable yet")
    with connect(running.server, max(0.01, deadline - time.monotonic())) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.0\r\nHost: session\r\n"
            f"Authorization: token {running.token}\r\n\r\n".encode()
        )
        answer = bytearray()
        while chunk := _read(conn):
            answer += chunk
            left = deadline - time.monotonic()
            if len(answer) > MAX_ANSWER or left <= 0:
                raise ValueError("answer too long or too slow")
            conn.settimeout(left)
    head, _, body = bytes(answer).partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
        raise ValueError(f"{target}: {head[:40]!r}")
    return json.loads(body)


def _read(conn: socket.socket) -> bytes:
    """The next bytes; b"" at the end (a relay's TLS may end without its closing alert)."""
    try:
        return conn.recv(65536)
    except ssl.SSLEOFError:
        return b""


def _count(value: object) -> int:
    """A count the server claims, kept within reason (a column holds it)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return max(0, min(value, MAX_COUNT))


def _moment(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
