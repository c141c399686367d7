"""The notifier: a thread beside the control loop that sends the outbox (store.outbox).

It never holds up the control loop: events are rows written with the change that caused them,
and only this thread talks to SMTP servers and webhooks. One notifier sends per facility: it
acts only while it holds the `notifier` lease.

Each delivery goes load → send → apply (STYLE 6): *claim* it in a short transaction (one more
attempt, and its next try pushed back by the backoff, committed before anything is sent), send
it outside any transaction, then *record* it sent, or the error. So a crash before the send
leaves a claimed delivery that is tried again after its backoff; a crash between the send and
the record sends it once more, with the same Message-ID / delivery id (at least once; exactly
once for a receiver that drops a repeated id). After `MAX_ATTEMPTS` a delivery is given up.

It also notices allocations that expired (their `valid_to` passed) since it last looked.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aifactory.control.deliveries import (
    Delivery,
    ServerUnreachable,
    SmtpConfig,
    Undeliverable,
    send_email,
    send_webhook,
)
from aifactory.control.loop import holder_is_dead
from aifactory.domain import notices
from aifactory.domain.notifications import (
    MAX_ATTEMPTS,
    Channel,
    destination_problem,
    retry_after_s,
)
from aifactory.store import outbox
from aifactory.store.db import Database
from aifactory.store.leases import release, try_acquire
from aifactory.store.models import (
    Allocation,
    FacilityFlag,
    NotificationPreference,
    OutboxNotification,
    Project,
    User,
)

log = logging.getLogger("aifactory.notifications")
LEASE = "notifier"
BATCH = 50
EXPIRIES_FLAG = "notified_expiries_through"  # allocations that expired until then are told
EXPIRIES_EVERY_S = 60.0
KEEP_S = 30 * 86400.0  # sent and given-up deliveries are kept this long, then deleted
PURGE_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    smtp: SmtpConfig | None  # None: e-mail is not configured, and e-mails are given up
    webhook_destinations: tuple[str, ...] = ()
    poll_s: float = 2.0
    lease_ttl_s: float = 30.0
    webhook_timeout_s: float = 10.0


class Notifier:
    def __init__(
        self, db: Database, config: NotifierConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._last = {"expiries": -1.0, "purge": -1.0}
        self._http = httpx.Client(timeout=config.webhook_timeout_s, follow_redirects=False)

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # a broken round never stops the notifier
                    log.exception("notifier round failed; trying again")
                self._wake.wait(self.config.poll_s)
                self._wake.clear()
        finally:
            self._http.close()
            with self.db.session() as session:
                release(session, LEASE, self.holder)

    def step(self) -> int:
        """One round: how many deliveries were sent. Nothing while another notifier acts."""
        now = self.clock()
        with self.db.session() as session:
            if (
                try_acquire(
                    session,
                    LEASE,
                    self.holder,
                    now,
                    self.config.lease_ttl_s,
                    is_dead=holder_is_dead,
                )
                is None
            ):
                return 0
        self._housekeeping(now)
        return self._send_due(now)

    # ---- sending ---------------------------------------------------------------------------
    def _send_due(self, now: float) -> int:
        with self.db.read() as session:
            due = list(
                session.scalars(
                    select(OutboxNotification.id)
                    .where(
                        OutboxNotification.state == outbox.PENDING,
                        OutboxNotification.next_attempt_at <= now,
                    )
                    .order_by(OutboxNotification.next_attempt_at, OutboxNotification.id)
                    .limit(BATCH)
                )
            )
        sent, unreachable = 0, set[str]()
        for delivery_id in due:
            sent += self._one(delivery_id, unreachable)
        return sent

    def _one(self, delivery_id: int, unreachable: set[str]) -> int:
        claimed = self._claim(delivery_id, unreachable)
        if claimed is None:
            return 0
        channel, delivery = claimed
        try:
            self._send(channel, delivery)
        except ServerUnreachable as error:
            unreachable.add(channel)
            self._record(delivery_id, error)
            return 0
        except Undeliverable as error:
            self._record(delivery_id, error)
            return 0
        self._record(delivery_id, None)
        return 1

    def _claim(self, delivery_id: int, unreachable: set[str]) -> tuple[str, Delivery] | None:
        """One more attempt, committed before the send; the delivery as it is to go out."""
        now = self.clock()
        with self.db.session() as session:
            row = session.get(OutboxNotification, delivery_id)
            if row is None or row.state != outbox.PENDING or row.channel in unreachable:
                return None
            row.attempts += 1
            row.next_attempt_at = now + retry_after_s(row.attempts)
            address, secret, problem = self._address(session, row)
            if problem is not None:
                _give_up(row, problem)
                return None
            return row.channel, Delivery(
                row.delivery_key,
                row.event,
                address,
                row.subject,
                row.text,
                dict(row.facts),
                row.created_at,
                secret,
            )

    def _address(
        self, session: Session, row: OutboxNotification
    ) -> tuple[str, str | None, str | None]:
        """(address, secret, why it cannot go) as things are now, not when it was queued."""
        if row.channel == Channel.EMAIL.value:
            user = session.get(User, row.user_id)
            if self.config.smtp is None:
                return "", None, "this facility sends no e-mail (no SMTP server configured)"
            if user is None or not user.email:
                return "", None, "the user has no e-mail address"
            return user.email, None, None
        prefs = session.get(NotificationPreference, row.user_id)
        if prefs is None or not prefs.webhook_url:
            return "", None, "the user has no webhook any more"
        problem = destination_problem(prefs.webhook_url, self.config.webhook_destinations)
        return prefs.webhook_url, prefs.webhook_secret, problem

    def _send(self, channel: str, delivery: Delivery) -> None:
        if channel == Channel.EMAIL.value:
            assert self.config.smtp is not None  # checked when claimed
            send_email(self.config.smtp, delivery)
        else:
            send_webhook(self._http, delivery)

    def _record(self, delivery_id: int, error: Undeliverable | None) -> None:
        with self.db.session() as session:
            row = session.get(OutboxNotification, delivery_id)
            if row is None or row.state != outbox.PENDING:
                return
            if error is None:
                row.state, row.sent_at, row.last_error = outbox.SENT, self.clock(), None
            elif error.permanent or row.attempts >= MAX_ATTEMPTS:
                _give_up(row, str(error))
            else:
                row.last_error = str(error)
                log.info("delivery %s failed (try %d): %s", row.delivery_key, row.attempts, error)

    # ---- expiries and retention -----------------------------------------------------------
    def _housekeeping(self, now: float) -> None:
        if now - self._last["expiries"] >= EXPIRIES_EVERY_S:
            self._last["expiries"] = now
            with self.db.session() as session:
                tell_expiries(session, now)
        if now - self._last["purge"] >= PURGE_EVERY_S:
            self._last["purge"] = now
            with self.db.session() as session:
                session.execute(
                    delete(OutboxNotification).where(
                        OutboxNotification.state != outbox.PENDING,
                        OutboxNotification.created_at < now - KEEP_S,
                    )
                )


def tell_expiries(session: Session, now: float) -> int:
    """Queue a notice for each allocation that expired since the last look, and move the mark,
    in one transaction; the first look only sets the mark (no notice of old expiries)."""
    flag = session.get(FacilityFlag, EXPIRIES_FLAG)
    if flag is None:
        session.add(FacilityFlag(name=EXPIRIES_FLAG, value=repr(now)))
        return 0
    since = float(flag.value)
    stmt = select(Allocation, Project.name).join(Project, Project.id == Allocation.project_id)
    rows = session.execute(stmt.where(Allocation.valid_to > since, Allocation.valid_to <= now))
    told = 0
    for allocation, project in rows:
        ended = datetime.fromtimestamp(allocation.valid_to, UTC).strftime("%Y-%m-%d %H:%M UTC")
        notice = notices.allocation_expired(allocation.id, allocation.name, project, ended)
        owners = outbox.owners_of(session, allocation.project_id)
        told += outbox.notify(session, notice, owners, now=now)
    flag.value = repr(now)
    return told


def _give_up(row: OutboxNotification, why: str) -> None:
    row.state = outbox.FAILED
    row.last_error = why
    log.warning("delivery %s given up: %s", row.delivery_key, why)
