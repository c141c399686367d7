"""`aifactory eff` against the real API (uvicorn in a thread over a fresh SQLite database), run
in-process with typer's CliRunner, over jobs settled as the facility settles them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.main import app
from aifactory.client import Client
from aifactory.store.db import Database
from tests.cli.test_startup_imports import heavy, imported_by
from tests.conftest import LiveServer
from tests.services.efficiency_jobs import GB, Ran, a_finished_job

H = 3600.0
LITTLE = {"cpu_time_s": 1.3 * 2 * H, "peak_rss_mb": 1.2 * GB, "gpu_utilisation_pct": 12.0}


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the command; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


def eff(server: LiveServer, *args: str) -> Result:
    token = server.admin_token
    return CliRunner().invoke(app, ["--url", server.url, "--token", token, "eff", *args])


def finished(server: LiveServer, *attempts: Ran, gpus: int = 1) -> int:
    return a_finished_job(
        server.db,
        user="admin",
        project="default",
        attempts=list(attempts),
        gpus=gpus,
        cpus=8,
        memory_mb=16 * GB,
    )


def test_a_job_s_report_reads_as_seff_does(live_server: LiveServer) -> None:
    job_id = finished(live_server, Ran(2 * H, LITTLE))
    done = eff(live_server, str(job_id))
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        f"Job {job_id}: train (default, admin) SUCCEEDED",
        "Ran      2 h 0 min (1 attempt)",
        "CPU      8 asked, 1.30 busy on average: 16 % efficiency",
        "Memory   16 GB asked, at most 1.2 GB used: 7.5 % efficiency",
        "GPU      1 asked, busy 12 % of the time",
        "Hint:    asked 16 GB of memory, used at most 1.2 GB: ask for 2 GB",
        "Hint:    asked 8 CPUs, kept 1.3 busy on average: ask for 2",
        "Hint:    its GPU was busy 12 % of the time on average: keep it fed (data loading, "
        "batch size)",
    ]


def test_figures_not_measured_say_so_and_attempts_get_a_table(live_server: LiveServer) -> None:
    job_id = finished(live_server, Ran(60, {}), Ran(120, {"peak_rss_mb": 900.0}), gpus=0)
    done = eff(live_server, str(job_id))
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert "CPU      8 asked, use not measured" in lines
    assert "Memory   16 GB asked, use not measured" in lines  # one attempt was not measured
    assert "GPU      none asked" in lines
    assert "Attempts" in done.stdout
    assert "900 MB" in done.stdout


def test_json_is_the_api_s_report(live_server: LiveServer) -> None:
    job_id = finished(live_server, Ran(2 * H, LITTLE))
    done = eff(live_server, str(job_id), "--json")
    assert done.exit_code == 0, done.output
    with Client(live_server.url, live_server.admin_token) as admin:
        assert json.loads(done.stdout) == admin.efficiency(job_id)


def test_a_job_that_has_not_ended_has_nothing_to_report(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.admin_token) as admin:
        job_id = admin.submit(["true"])["id"]
    done = eff(live_server, str(job_id))
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "No attempt has ended yet: nothing measured to report."


def test_the_worst_jobs_of_a_project_come_first(live_server: LiveServer) -> None:
    fine = finished(live_server, Ran(2 * H, {**LITTLE, "gpu_utilisation_pct": 99.0}))
    worst = finished(live_server, Ran(2 * H, LITTLE))
    done = eff(live_server, "--project", "default", "--worst", "5", "--json")
    assert done.exit_code == 0, done.output
    assert [r["job_id"] for r in json.loads(done.stdout)] == [worst, fine]
    shown = eff(live_server, "--project", "default", "--worst", "1")
    assert shown.exit_code == 0, shown.output
    assert "Least efficient jobs of default" in shown.stdout
    assert "1.76" in shown.stdout  # its idle GPU-hours: 2 h × 88 %
    rows = [line.split("│")[1].strip() for line in shown.stdout.splitlines() if "SUCCEEDED" in line]
    assert rows == [str(worst)]
    token = live_server.admin_token
    usage = ["--url", live_server.url, "--token", token, "usage", "--project", "default"]
    same = CliRunner().invoke(app, [*usage, "--least-efficient", "1"])
    assert same.exit_code == 0, same.output
    assert same.stdout == shown.stdout  # `usage` lists them too


def test_a_job_or_a_project_is_asked_for_not_both(live_server: LiveServer) -> None:
    for args in ([], ["1", "--project", "default"]):
        done = eff(live_server, *args)
        assert done.exit_code == 2, done.output
        assert "give a job id, or --project NAME" in done.output


def test_eff_starts_without_the_facility_s_heavy_modules(tmp_path: Path) -> None:
    modules, output = imported_by(["eff", "1"], tmp_path / "modules.json")
    assert "cannot reach the facility" in output
    assert heavy(modules) == []
