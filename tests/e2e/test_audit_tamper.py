"""On a real running facility (`aifactory up`, SQLite and PostgreSQL): actions leave audit
events, `aifactory audit verify` passes; then one stored event is changed, and another
deleted, directly in the database, and `aifactory audit verify` names each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def facility(tmp_path: Path, db_url: str) -> Iterator[FacilityProcess]:
    process = FacilityProcess(tmp_path / "data", db_url, virtual_gpus=2, cpus=4)
    process.data_dir.mkdir()
    process.start()
    yield process
    process.stop()
    process.kill_leftover_jobs()


def audit_cli(facility: FacilityProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    env |= {"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": facility.token or ""}
    return subprocess.run(
        [sys.executable, "-m", "aifactory", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def sql(url: str, statement: str, **params: object) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def test_verify_finds_a_changed_and_a_deleted_event(
    facility: FacilityProcess, tmp_path: Path
) -> None:
    with facility.client() as admin:
        admin.set_admission(paused=True)  # the jobs stay PENDING: only the API is exercised
        admin.create_organisation("lab", "university")
        carol = admin.create_user("carol")
        admin.create_project("vision", "lab", owner="carol")
        job = admin.submit(["true"], project="vision")
        admin.cancel(job["id"])
    refused = httpx.get(f"{facility.url}/api/v1/me", headers={"Authorization": "Bearer afy_x"})
    assert refused.status_code == 401
    assert carol["token"]

    intact = audit_cli(facility, "verify")
    assert intact.returncode == 0, intact.stderr
    count = int(intact.stdout.split(": ")[1].split()[0])
    assert count >= 9
    exported = tmp_path / "audit.jsonl"
    assert audit_cli(facility, "export", "--out", str(exported)).returncode == 0
    events = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, count + 1))
    assert {"auth.failed", "job.submit", "job.cancel", "facility.pause"} <= {
        e["action"] for e in events
    }

    changed = next(e["seq"] for e in events if e["action"] == "job.submit")
    change = "UPDATE audit_events SET actor = :actor WHERE seq = :seq"
    sql(facility.database_url, change, actor="x", seq=changed)
    broken = audit_cli(facility, "verify")
    assert broken.returncode == 1
    assert f"audit log broken at event {changed}: " in broken.stderr
    assert "changed" in broken.stderr

    sql(facility.database_url, change, actor="admin", seq=changed)  # as it was
    assert audit_cli(facility, "verify").returncode == 0
    sql(facility.database_url, "DELETE FROM audit_events WHERE seq = 4")
    broken = audit_cli(facility, "verify")
    assert broken.returncode == 1
    assert "audit log broken at event 4: event 4 is missing" in broken.stderr
