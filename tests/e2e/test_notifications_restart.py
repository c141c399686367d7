"""A job's end is mailed exactly once across a control-plane SIGKILL: the job ends while the
facility is down (or just after it is back), its end is recorded with its notice in one
transaction when the restarted loop reconciles it, and the notifier mails it once
(docs/notifications.md, "Delivery guarantees")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactory.client import Client
from tests.e2e.process import FacilityProcess
from tests.e2e.test_restart import wait_until
from tests.mailbox import Mailbox

pytestmark = pytest.mark.slow


@pytest.fixture
def facility(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[FacilityProcess, Mailbox]]:
    box = Mailbox().start()
    process = FacilityProcess(tmp_path / "data", sqlite_url, virtual_gpus=2, cpus=4)
    process.data_dir.mkdir()
    process.mail_to(box.port)
    yield process, box
    process.stop()
    process.kill_leftover_jobs()
    box.stop()


def test_a_job_end_is_mailed_exactly_once_across_a_sigkill(
    facility: tuple[FacilityProcess, Mailbox],
) -> None:
    process, box = facility
    process.start()
    with process.client() as admin:
        admin.create_user("uma", email="uma@example.org")
        admin.add_member("default", "uma")
        token = admin.create_token("uma-cli", user="uma")["token"]
    with Client(process.url, token) as uma:
        uma.set_notification_preferences(events=["job_ended"])
        job = uma.submit(script="sleep 2", name="short", project="default", time_limit_s=60)
        wait_until(lambda: uma.job(job["id"])["state"] == "RUNNING", 30, "the job to run")
    process.kill()  # the job ends while no control plane runs, or soon after it is back
    process.start()
    assert len(box.wait_for(1)) == 1
    with Client(process.url, token) as uma:
        wait_until(lambda: uma.notifications()[0]["state"] == "sent", 10, "the mail recorded")
        time.sleep(1.0)  # several notifier rounds more
        assert uma.job(job["id"])["state"] == "SUCCEEDED"
        (sent,) = uma.notifications()
    (mail,) = box.messages
    assert mail["Subject"] == f"Job {job['id']} (short) SUCCEEDED (exit code 0)"
    assert (sent["state"], sent["attempts"]) == ("sent", 1)
