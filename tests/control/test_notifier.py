"""Notifications end to end in one process: events queued in the transaction of their change
(store.outbox), sent by the notifier to a real SMTP server (aiosmtpd) and a webhook receiver
that checks each signature; a delivery is sent once, and retried while the server is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from aifactory.accounting import ledger
from aifactory.accounting.budget import raise_alerts
from aifactory.control.deliveries import SmtpConfig
from aifactory.control.notifier import Notifier, NotifierConfig, tell_expiries
from aifactory.domain.jobs import JobSpec
from aifactory.domain.ledger import EntryKind
from aifactory.errors import InvalidInput
from aifactory.services.jobs import cancel_job, submit_job
from aifactory.services.notifications import list_deliveries, set_preferences
from aifactory.services.proposals import award, reject
from aifactory.store.db import Database
from aifactory.store.models import OutboxNotification, User
from tests.conftest import FakeClock
from tests.mailbox import Mailbox, WebhookReceiver
from tests.postgres import free_port
from tests.services.accounting_world import DAY, T0, build_world, who
from tests.services.test_proposals import submit

HOOKS = ("127.0.0.1/32",)


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    with db.session() as s:
        for name in ("owen", "alice"):
            s.execute(update(User).where(User.name == name).values(email=f"{name}@example.org"))
    return db


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


def notifier(db: Database, port: int, clock: FakeClock | None = None) -> Notifier:
    smtp = SmtpConfig("127.0.0.1", port, "none", "facility@example.org", timeout_s=5)
    return Notifier(db, NotifierConfig(smtp, HOOKS), clock or FakeClock(T0 + DAY))


def test_a_job_submitted_with_notify_is_told_though_its_owner_follows_no_job_ends(
    world: Database, mailbox: Mailbox
) -> None:
    with world.session() as s:
        told = JobSpec(name="told", command=("true",), notify=True)
        quiet = JobSpec(name="quiet", command=("true",))
        job = submit_job(s, who(s, "alice"), told, project="lab", idempotency_key=None, now=T0)
        other = submit_job(s, who(s, "alice"), quiet, project="lab", idempotency_key=None, now=T0)
    with world.session() as s:
        cancel_job(s, who(s, "alice"), job.job.id, now=T0 + 1)
        cancel_job(s, who(s, "alice"), other.job.id, now=T0 + 1)
    sender = notifier(world, mailbox.port)
    assert sender.step() == 1
    (mail,) = mailbox.messages
    assert (mail["To"], mail["Subject"]) == (
        "alice@example.org",
        f"Job {job.job.id} (told) CANCELLED",
    )
    with world.session() as s:  # e-mail off in her preferences: nothing, even when asked
        set_preferences(s, who(s, "alice"), email=False, now=T0)
        again = submit_job(s, who(s, "alice"), told, project="lab", idempotency_key=None, now=T0)
    with world.session() as s:
        cancel_job(s, who(s, "alice"), again.job.id, now=T0 + 2)
    assert sender.step() == 0


def test_a_job_that_ends_mails_the_user_who_opted_in_once(
    world: Database, mailbox: Mailbox
) -> None:
    with world.session() as s:
        set_preferences(s, who(s, "alice"), events=["job_ended"], now=T0)
        spec = JobSpec(name="train", command=("true",))
        job = submit_job(s, who(s, "alice"), spec, project="lab", idempotency_key=None, now=T0)
        owens = submit_job(s, who(s, "owen"), spec, project="lab", idempotency_key=None, now=T0)
    with world.session() as s:
        cancel_job(s, who(s, "alice"), job.job.id, now=T0 + 1)
        cancel_job(s, who(s, "owen"), owens.job.id, now=T0 + 1)  # owen did not opt in
    sender = notifier(world, mailbox.port)
    assert sender.step() == 1
    assert sender.step() == 0  # sent once
    (mail,) = mailbox.messages
    assert mail["To"] == "alice@example.org"
    assert mail["Subject"] == f"Job {job.job.id} (train) CANCELLED"
    assert mail["Message-ID"] == f"<job.{job.job.id}.ended.u{job.job.user_id}.email@example.org>"
    with world.session() as s:
        (sent,) = list_deliveries(s, who(s, "alice"))
    assert (sent.state, sent.attempts, sent.event) == ("sent", 1, "job_ended")


def test_a_proposal_decision_and_80_percent_reach_the_owner_by_mail_and_signed_webhook(
    world: Database, mailbox: Mailbox
) -> None:
    hooks = WebhookReceiver()
    try:
        with world.session() as s:
            with pytest.raises(InvalidInput) as refused:
                set_preferences(s, who(s, "owen"), webhook_url="https://evil.example/x", now=T0)
            assert refused.value.field == "webhook_url"
            prefs = set_preferences(
                s, who(s, "owen"), webhook_url=hooks.url, destinations=HOOKS, now=T0
            )
        assert prefs.webhook_secret is not None
        hooks.secret = prefs.webhook_secret
        pid = submit(world).proposal.id
        with world.session() as s:
            allocation = award(
                s,
                who(s, "admin"),
                proposal_id=pid,
                gpu_hours=100.0,
                valid_from=T0,
                valid_to=T0 + 90 * DAY,
                now=T0 + 3600,
            )
        with world.session() as s:
            ledger.append(
                s,
                allocation_id=allocation.allocation.id,
                kind=EntryKind.SETTLE,
                gpu_ms=-80 * 3600 * 1000,
                key="test:80",
                at=T0 + 7200,
                actor="test",
                reason="80 GPU-h used",
            )
            raise_alerts(s, allocation.allocation.id, now=T0 + 7200)
        assert notifier(world, mailbox.port).step() == 4
    finally:
        hooks.stop()
    subjects = sorted(m["Subject"] for m in mailbox.to("owen@example.org"))
    assert subjects == [
        "Allocation lab-r1 has used 80 % of its GPU-hours",
        f"Proposal {pid} (Protein folding): awarded",
    ]
    assert len(mailbox.messages) == 2  # alice is a member, not an owner
    assert hooks.refused == 0
    assert sorted(r["event"] for r in hooks.received) == ["allocation_used", "proposal_decided"]
    assert {r["headers"]["X-Aifactory-Delivery"] for r in hooks.received} == {
        r["id"] for r in hooks.received
    }


def test_mail_waits_while_the_server_is_down_and_goes_once_it_is_up(world: Database) -> None:
    port = free_port()
    clock = FakeClock(T0 + DAY)
    sender = notifier(world, port, clock)
    pid = submit(world).proposal.id
    with world.session() as s:
        reject(s, who(s, "admin"), proposal_id=pid, note="out of scope", now=T0 + 3600)
    assert sender.step() == 0  # nothing listens
    with world.session() as s:
        row = s.scalars(select(OutboxNotification)).one()
        assert (row.state, row.attempts) == ("pending", 1)
        assert "SMTP server 127.0.0.1" in (row.last_error or "")
    box = Mailbox(port).start()
    try:
        assert sender.step() == 0  # not due before its backoff
        clock.advance(31)
        assert sender.step() == 1
        assert sender.step() == 0
    finally:
        box.stop()
    (mail,) = box.messages
    assert mail["Subject"] == f"Proposal {pid} (Protein folding): rejected"


def test_an_allocation_that_expires_is_told_to_its_projects_owners_once(world: Database) -> None:
    with world.session() as s:
        s.execute(update(User).where(User.name == "admin").values(email="admin@example.org"))
    # The default project's starter allocation runs 90 days from T0 (admin owns the project).
    with world.session() as s:
        assert tell_expiries(s, T0) == 0  # the first look only sets the mark
    with world.session() as s:
        assert tell_expiries(s, T0 + 89 * DAY) == 0
    with world.session() as s:
        assert tell_expiries(s, T0 + 91 * DAY) == 1
    with world.session() as s:
        assert tell_expiries(s, T0 + 92 * DAY) == 0
    with world.read() as s:
        (row,) = s.scalars(
            select(OutboxNotification).where(OutboxNotification.event == "allocation_expired")
        )
    assert row.subject == "Allocation default-starter has expired"
    assert "expired at 2024-02-12" in row.text
