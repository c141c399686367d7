"""The idle culler against the store (control.interactive): it records what each running
session's server says, stops one idle for its timeout with the reason on the session and its
job and tells who started it, never waits for a server, and does not take a server's word
forever."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from aifactory.control.interactive import (
    MAX_COUNT,
    PROBE_S,
    STALE_ROUNDS,
    Running,
    SessionCuller,
    ask_server,
)
from aifactory.domain import interactive
from aifactory.domain.interactive import Activity, SessionSpec
from aifactory.domain.jobs import JobState
from aifactory.services.auth import principal_of
from aifactory.services.interactive import start_session
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import (
    AuditEvent,
    InteractiveSession,
    Job,
    JobEvent,
    OutboxNotification,
    User,
)
from tests.conftest import seed_facility

T0 = 1_800_000_000.0
IDLE_S = 600.0
EVERY_S = 10.0


class Servers:
    """What each session's server answers (None: no answer), as the probe sees it."""

    def __init__(self) -> None:
        self.says: dict[int, Activity | None] = {}
        self.asked: list[int] = []
        self.hang = threading.Event()  # set: every probe hangs until cleared

    def __call__(self, running: Running) -> Activity | None:
        self.asked.append(running.job_id)
        while self.hang.is_set():
            threading.Event().wait(0.01)
        return self.says.get(running.job_id)


@pytest.fixture
def facility(db: Database) -> Database:
    seed_facility(db, now=T0)
    return db


def a_session(db: Database) -> int:
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        view = start_session(s, admin, SessionSpec(project=None, idle_timeout_s=IDLE_S), now=T0)
        job = s.get(Job, view.id)
        assert job is not None
        job.state, job.started_at = JobState.RUNNING.value, T0
        return view.id


def rounds(culler: SessionCuller, *moments: float) -> None:
    """Each moment a round; the probes asked in one are answered before the next."""
    for now in moments:
        culler(now)
        for future in list(culler._asked.values()):
            future.result(5)


def row(db: Database, job_id: int) -> tuple[InteractiveSession, Job]:
    with db.read() as s:
        found, job = s.get(InteractiveSession, job_id), s.get(Job, job_id)
        assert found is not None
        assert job is not None
        return found, job


def test_a_session_used_now_and_then_runs_on(facility: Database) -> None:
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    sid = a_session(facility)
    for minute in range(0, 40, 5):  # active every five minutes, for 40 minutes
        now = T0 + minute * 60
        servers.says[sid] = Activity(now - 1)
        rounds(culler, now, now + 1)
    found, job = row(facility, sid)
    assert not job.cancel_requested
    assert found.checked_at is not None
    assert found.last_activity_at == pytest.approx(T0 + 35 * 60 - 1)


def test_an_idle_session_is_stopped_once_with_its_reason(facility: Database) -> None:
    with facility.session() as s:
        s.execute(update(User).where(User.name == "admin").values(email="admin@example.org"))
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    sid, busy = a_session(facility), a_session(facility)
    servers.says[sid] = Activity(T0 + 5)
    servers.says[busy] = Activity(T0 + 5, connections=1)  # a notebook is open in it
    rounds(culler, T0 + 10, T0 + 11, T0 + 5 + IDLE_S - 1)
    assert not row(facility, sid)[1].cancel_requested
    rounds(culler, T0 + 5 + IDLE_S + 20, T0 + 5 + IDLE_S + 40)
    found, job = row(facility, sid)
    assert job.cancel_requested  # the control loop stops it: SIGTERM, grace
    assert found.culled_reason is not None
    assert "idle for 10 min" in found.culled_reason
    assert not row(facility, busy)[1].cancel_requested
    with facility.read() as s:
        events = list(s.scalars(select(JobEvent.reason).where(JobEvent.job_id == sid)))
        audited = list(s.scalars(select(AuditEvent).where(AuditEvent.object == f"job:{sid}")))
    assert sum("idle for" in (e or "") for e in events) == 1
    assert [a.actor for a in audited if a.action == "job.cancel"] == ["idle culler"]
    with facility.read() as s:  # who started it is told, once (the admin has an e-mail)
        told = list(s.scalars(select(OutboxNotification.subject)))
    assert told == [f"Session {sid} was stopped"]


def test_a_server_that_never_answers_is_idle_since_its_start(facility: Database) -> None:
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    sid = a_session(facility)
    rounds(culler, T0 + 1, T0 + 2, T0 + IDLE_S - 1)
    assert servers.asked.count(sid) == 3  # asked every round while it has not answered
    assert not row(facility, sid)[1].cancel_requested
    rounds(culler, T0 + IDLE_S + 1)
    assert row(facility, sid)[1].cancel_requested


def test_a_server_that_stops_answering_is_not_believed_busy_forever(facility: Database) -> None:
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    sid = a_session(facility)
    servers.says[sid] = Activity(T0 + 2, busy_kernels=1)
    rounds(culler, T0 + 3, T0 + 4)
    servers.says[sid] = None  # it goes quiet while it said it was busy
    stale = T0 + 4 + STALE_ROUNDS * EVERY_S + 1
    rounds(culler, stale, T0 + 4 + IDLE_S - 1)
    assert not row(facility, sid)[1].cancel_requested
    rounds(culler, T0 + 4 + IDLE_S + 1)
    assert row(facility, sid)[1].cancel_requested


def test_a_server_that_claims_activity_in_the_future_gains_nothing(facility: Database) -> None:
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    sid = a_session(facility)
    servers.says[sid] = Activity(T0 + 10 * 365 * 86400)
    rounds(culler, T0 + 10, T0 + 11)
    assert row(facility, sid)[0].last_activity_at == T0 + 11  # taken as when heard, at most
    servers.says[sid] = None
    rounds(culler, T0 + 10 + IDLE_S + 1)
    assert row(facility, sid)[1].cancel_requested


def test_the_loop_never_waits_for_a_server(facility: Database) -> None:
    servers = Servers()
    culler = SessionCuller(facility, Path("/srv/jobs"), every_s=EVERY_S, probe=servers)
    a_session(facility)
    servers.hang.set()
    culler(T0 + 1)  # asks, and returns
    culler(T0 + 2)  # its question is still out: not asked twice
    assert len(servers.asked) <= 1
    servers.hang.clear()


class LyingServer:
    """A session's server that is the project's code, on a real socket: it answers `reply`
    to whatever it is asked but its kernels (none), a byte every `drip_s` if set."""

    def __init__(self, path: Path, reply: bytes, drip_s: float = 0.0) -> None:
        self.reply, self.drip_s = reply, drip_s
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                asked = conn.recv(65536)
                reply = _answer([]) if b"/api/kernels" in asked else self.reply
                try:
                    if self.drip_s:
                        for byte in reply:
                            if self.stopped.wait(self.drip_s):
                                return
                            conn.sendall(bytes([byte]))
                    else:
                        conn.sendall(reply)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


def _answer(body: object) -> bytes:
    data = json.dumps(body).encode()
    return b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + data


def test_a_server_claiming_absurd_counts_breaks_nothing(facility: Database, tmp_path: Path) -> None:
    sid, other = a_session(facility), a_session(facility)
    for job_id in (sid, other):
        (tmp_path / str(job_id) / "work").mkdir(parents=True)
    status = {"connections": 10**30, "last_activity": "2026-01-01T00:00:00Z"}
    liar = LyingServer(tmp_path / str(sid) / "work" / interactive.SOCKET, _answer(status))
    try:
        said = ask_server(Running(sid, T0, tmp_path / str(sid) / "work" / interactive.SOCKET, "t"))
        assert said is not None
        assert said.connections == MAX_COUNT  # within reason: a column holds it
        culler = SessionCuller(facility, tmp_path, every_s=EVERY_S)
        rounds(culler, T0 + 1, T0 + 2)
        rounds(culler, T0 + IDLE_S + 5)  # the other, never answering, is still culled
        assert row(facility, other)[1].cancel_requested
    finally:
        liar.stop()


def test_a_server_that_answers_a_byte_at_a_time_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "slow.sock"
    drip = LyingServer(path, _answer({"connections": 0}), drip_s=0.2)
    try:
        began = time.monotonic()
        assert ask_server(Running(1, T0, path, "t")) is None
        assert time.monotonic() - began < PROBE_S + 1
    finally:
        drip.stop()
