"""Issue 23's operator path for maintenance, on a real facility (`aifactory up` as a process,
the embedded executor, SQLite) with a real SMTP server: an operator plans a window with the
CLI; the user with work on the node is mailed; a short job is backfilled up to the window,
a longer one waits with a reason that names it and an estimated start after it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.client import Client
from tests.e2e.process import FacilityProcess
from tests.e2e.test_restart import wait_until
from tests.mailbox import Mailbox

pytestmark = pytest.mark.slow
HOUR = 3600


@pytest.fixture
def facility(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[FacilityProcess, Mailbox]]:
    box = Mailbox().start()
    process = FacilityProcess(tmp_path / "data", sqlite_url, virtual_gpus=2, cpus=4)
    process.data_dir.mkdir()
    process.mail_to(box.port)
    process.start()
    yield process, box
    process.stop()
    process.kill_leftover_jobs()
    box.stop()


def test_an_operator_plans_maintenance_users_are_told_and_the_scheduler_keeps_it(
    facility: tuple[FacilityProcess, Mailbox],
) -> None:
    process, box = facility
    with process.client() as admin:
        admin.create_user("uma", email="uma@example.org")
        admin.add_member("default", "uma")
        token = admin.create_token("uma-cli", user="uma")["token"]
        (node,) = admin.nodes()
    admin_token = process.token
    with Client(process.url, token) as uma:
        running = uma.submit(
            script="sleep 600", name="hold-one", project="default", gpus=1, time_limit_s=HOUR
        )
        wait_until(lambda: uma.job(running["id"])["state"] == "RUNNING", 30, "the job to run")

    window = ["--nodes", node["id"], "--from", "+2h", "--to", "+4h", "--reason", "firmware update"]
    planned = CliRunner().invoke(
        app, ["--url", process.url, "--token", admin_token, "maintenance", "create", *window]
    )
    assert planned.exit_code == 0, planned.output
    assert "1 notification(s) queued" in planned.stdout
    (mail,) = box.wait_for(1)
    assert mail["To"] == "uma@example.org"
    assert mail["Subject"].startswith("Maintenance from ")
    text = mail.get_content()
    assert f"Node {node['id']} will be out of service from " in text
    assert "firmware update" in text

    with Client(process.url, token) as uma:
        short = uma.submit(
            script="true", name="short", project="default", gpus=1, time_limit_s=HOUR
        )
        long = uma.submit(
            script="true", name="long", project="default", gpus=1, time_limit_s=3 * HOUR
        )
        wait_until(lambda: uma.job(short["id"])["state"] == "SUCCEEDED", 30, "the short job")
        wait_until(lambda: uma.job(long["id"])["queue"] is not None, 30, "a verdict")
        waiting = uma.job(long["id"])
        uma.cancel(running["id"])
        uma.cancel(long["id"])
    assert waiting["state"] == "PENDING"
    assert "maintenance begins at" in waiting["queue"]["reason"]
    assert "(firmware update)" in waiting["queue"]["reason"]
    (planned_window,) = admin_windows(process.url, admin_token)
    starts = datetime.fromisoformat(waiting["queue"]["estimated_start_at"]).astimezone(UTC)
    assert starts >= datetime.fromisoformat(planned_window["ends_at"]).astimezone(UTC)


def admin_windows(url: str, token: str) -> list[dict[str, str]]:
    with Client(url, token) as api:
        return api.maintenance()
