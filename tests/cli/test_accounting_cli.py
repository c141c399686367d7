"""The accounting commands against the real API (uvicorn in a thread over a fresh database),
run in-process with typer's CliRunner; the error line is checked on `python -m aifactory`, the
way a user sees it. The facility is as bootstrapped: five programmes, and project `default`
(organisation `default`, a research institute) with its 100 GPU-h `default-starter`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.cli.units import moment
from aifactory.client import ApiError, Client
from aifactory.client.accounting import CHARTS
from aifactory.domain.access_modes import due_day
from aifactory.store.db import Database
from tests.conftest import LiveServer

BOOTSTRAP_PROGRAMMES = ("research", "startup", "sme", "government", "commercial")
NOW = datetime.now(UTC)
TODAY = NOW.strftime("%Y-%m-%d")
THIS_MONTH = NOW.strftime("%Y-%m")
LAST_MONTH = (NOW.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def day(offset: int) -> str:
    return (NOW + timedelta(days=offset)).strftime("%Y-%m-%d")


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: these tests are about the commands; the API tests cover both stores."""
    database = Database(sqlite_url)
    yield database
    database.dispose()


@dataclass
class Cli:
    """`aifactory ARGS` against the live server, as the admin unless another token is given."""

    server: LiveServer

    def __call__(self, *args: str, token: str | None = None, columns: int = 250) -> Result:
        target = ["--url", self.server.url, "--token", token or self.server.admin_token]
        return CliRunner().invoke(app, [*target, *args], env={"COLUMNS": str(columns)})

    def ok(self, *args: str, token: str | None = None, columns: int = 250) -> str:
        result = self(*args, token=token, columns=columns)
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
        return result.stdout

    def json(self, *args: str, token: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", token=token))


@pytest.fixture
def cli(live_server: LiveServer) -> Cli:
    return Cli(live_server)


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


def test_dates_are_days_in_utc_or_iso_8601_times() -> None:
    assert moment("2025-03-01") == "2025-03-01T00:00:00+00:00"
    assert moment("2025-03-01T12:30:00+02:00") == "2025-03-01T12:30:00+02:00"
    assert moment("2025-03-01T12:30Z") == "2025-03-01T12:30:00+00:00"
    assert moment("2025-03-01T12:30") == "2025-03-01T12:30:00"  # the API reads it as UTC
    result = CliRunner().invoke(app, ["usage", "--from", "soon"], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "'soon' is not a date (YYYY-MM-DD) or an ISO 8601 time" in result.output


def test_programmes_lists_the_bootstrap_five_and_set_updates_one(cli: Cli, tmp_path: Path) -> None:
    listed = cli.ok("programmes")
    for name in BOOTSTRAP_PROGRAMMES:
        assert name in listed
    assert "university, institute" in listed  # research's eligible kinds, shortened
    assert "3.20" in listed  # commercial's € per GPU-h
    assert "Open research" not in listed  # titles are in --json
    narrow = cli.ok("programmes", columns=80)
    assert "…" not in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "starter" not in narrow  # left out at 80 columns, before anything is cut short
    programmes = {p["name"]: p for p in cli.json("programmes")}
    assert set(programmes) == set(BOOTSTRAP_PROGRAMMES)
    # What `programmes --json` prints is a programme file, read-only fields and all.
    edited = {**programmes["research"], "priority_weight": 120}
    path = tmp_path / "research.json"
    path.write_text(json.dumps(edited))
    assert cli.ok("programmes", "set", "research", "--file", str(path)).strip() == (
        "programme research updated"
    )
    research = next(p for p in cli.json("programmes") if p["name"] == "research")
    assert research["priority_weight"] == 120
    wrong = cli("programmes", "set", "sme", "--file", str(path))
    assert wrong.exit_code == 2
    assert "describes programme 'research', not 'sme'" in wrong.output


def test_calls_create_and_list(cli: Cli) -> None:
    made = cli.ok(
        "calls", "create", "r1", "--programme", "research", "--title", "Research 2025",
        "--opens", day(-1), "--closes", day(30), "--budget-gpu-hours", "1000",
    )  # fmt: skip
    assert made.strip() == "call r1 created: 1,000 GPU-h under research"
    (call,) = cli.json("calls")
    assert call["name"] == "r1"
    assert call["opens_at"].startswith(day(-1) + "T00:00:00")
    assert (call["budget_gpu_hours"], call["awarded_gpu_hours"], call["open"]) == (1000, 0, True)
    row = next(line for line in cli.ok("calls").splitlines() if "r1" in line)
    for cell in ("research", "Research 2025", day(-1), day(30), "1,000", "yes"):
        assert cell in row


def test_a_proposal_from_submission_to_award(cli: Cli, admin: Client) -> None:
    admin.create_organisation("tu-delft", "university")
    pia = admin.create_user("pia")["token"]
    admin.create_project("vision", "tu-delft", owner="pia")
    rita = admin.create_user("rita", facility_role="reviewer")["token"]
    admin.create_user("rex", facility_role="reviewer")
    admin.add_member("vision", "rex", "viewer")  # rex may not review for tu-delft
    admin.create_call(
        "r1",
        programme="research",
        title="Research 2025",
        opens_at=moment(day(-1)),
        closes_at=moment(day(30)),
        budget_gpu_hours=1000,
    )
    submitted = cli.json(
        "proposals", "submit", "--call", "r1", "--project", "vision", "--title", "Vision models",
        "--abstract", "We train vision models.", "--justification", "400 GPU-h of training.",
        "--gpu-hours", "400", "--dataset", "imagenet", "--dataset", "coco", token=pia,
    )  # fmt: skip
    pid = str(submitted["id"])
    assert (submitted["state"], submitted["planned_datasets"]) == (
        "submitted",
        ["imagenet", "coco"],
    )
    assert cli.ok("proposals", "assign", pid, "rita").strip() == f"rita will review proposal {pid}"
    refused = cli("proposals", "assign", pid, "rex")
    assert refused.exit_code == 1
    assert isinstance(refused.exception, ApiError)
    assert "conflict of interest" in refused.exception.message
    cli.ok("proposals", "review", pid, "--score", "4", "--comment", "A sound plan.", token=rita)
    shown = cli.ok("proposals", "show", pid)
    assert "Vision models" in shown
    assert "rita" in shown
    assert "A sound plan." in shown
    allocation = cli.json(
        "proposals", "award", pid, "--gpu-hours", "300", "--from", TODAY, "--to", day(90),
        "--quota-gpus", "2",
    )  # fmt: skip
    assert (allocation["name"], allocation["award_gpu_hours"]) == ("vision-r1", 300)
    assert allocation["quota_gpus"] == 2
    mine = cli.ok("proposals", token=pia)
    assert "awarded" in mine
    assert "vision-r1" in mine
    row = next(line for line in cli.ok("allocations").splitlines() if "vision-r1" in line)
    for cell in ("vision", "research", "300"):
        assert cell in row
    assert cli.json("calls")[0]["awarded_gpu_hours"] == 300


def test_a_playground_call_awards_at_once_and_the_list_shows_deadlines(
    cli: Cli, admin: Client
) -> None:
    admin.create_organisation("spark", "startup")
    admin.create_project("shop", "spark")
    made = cli.ok(
        "calls", "create", "pg", "--programme", "startup", "--title", "Playground",
        "--opens", day(-1), "--closes", day(30), "--budget-gpu-hours", "500",
        "--mode", "playground", "--ceiling-gpu-hours", "100", "--funding", "eu",
    )  # fmt: skip
    assert made.strip() == "call pg created: 500 GPU-h under startup, playground (EU)"
    cli.ok(
        "calls", "create", "fl", "--programme", "startup", "--title", "Fast lane",
        "--opens", day(-1), "--closes", day(30), "--budget-gpu-hours", "500",
        "--mode", "fast_lane",
    )  # fmt: skip
    asked = ("--project", "shop", "--title", "Try", "--abstract", "A.", "--justification", "J.")
    awarded = cli.ok("proposals", "submit", "--call", "pg", "--gpu-hours", "50", *asked)
    assert "awarded at once as allocation shop-pg" in awarded
    over = cli("proposals", "submit", "--call", "pg", "--gpu-hours", "150", *asked)
    assert isinstance(over.exception, ApiError)
    assert "at most 100 GPU-h" in over.exception.message
    waiting = cli.json("proposals", "submit", "--call", "fl", "--gpu-hours", "50", *asked)
    assert (waiting["access_mode"], waiting["late"]) == ("fast_lane", False)
    row = next(line for line in cli.ok("proposals").splitlines() if "fl " in line)
    due = due_day(datetime.fromisoformat(waiting["deadline"]).timestamp())
    assert due.isoformat() in row  # the Amsterdam day its answer is due
    assert "LATE" not in row


def test_allocations_create_adjust_and_ledger(cli: Cli, admin: Client) -> None:
    starter = cli.ok("allocations", "--project", "default")
    assert "default-starter" in starter
    assert "100" in starter
    admin.create_organisation("acme", "company")
    admin.create_project("shop", "acme")
    made = cli.json(
        "allocations", "create", "--project", "shop", "--programme", "commercial",
        "--gpu-hours", "50", "--from", TODAY, "--to", day(30), "--reason", "contract 42",
    )  # fmt: skip
    name = made["name"]
    adjusted = cli.ok(
        "allocations", "adjust", name, "--gpu-hours", "-20", "--reason", "returned unused"
    )
    assert adjusted.strip() == f"allocation {name} adjusted: 30 GPU-h left"
    row = next(line for line in cli.ok("allocations").splitlines() if line.startswith(f"│ {name}"))
    assert "50 (-20)" in row
    ledger = cli.json("allocations", "ledger", name)
    assert [(e["gpu_hours"], e["reason"]) for e in ledger][-1] == (-20, "returned unused")
    shown = cli.ok("allocations", "ledger", name, columns=100)
    assert max(len(line) for line in shown.splitlines()) <= 100
    award, taken = (line for line in shown.splitlines() if "contract" in line or "unused" in line)
    assert "│ +50 " in award
    assert "│ -20 " in taken
    assert "returned unused" in taken


def test_usage_on_an_empty_facility(cli: Cli) -> None:
    found = cli.json("usage", "--from", day(-30), "--to", day(1))
    assert found["records"] == []
    assert (found["totals"]["records"], found["totals"]["net"]) == (0, "0.00")
    assert "total: 0 record(s), 0 GPU-h" in cli.ok("usage", "--project", "default")


def test_an_invoice_for_a_closed_month_writes_its_pdf_and_csv(cli: Cli, tmp_path: Path) -> None:
    pdf, csv = tmp_path / "invoice.pdf", tmp_path / "invoice.csv"
    shown = cli.ok("invoice", "default", LAST_MONTH, "--pdf", str(pdf), "--csv", str(csv))
    assert f"project default, {LAST_MONTH}" in shown
    assert f"wrote {pdf}" in shown
    assert pdf.read_bytes().startswith(b"%PDF")
    assert csv.read_text().strip()
    again = cli.json("invoice", "default", LAST_MONTH)  # issued once, then as issued
    assert again["number"] in shown
    assert again["month"] == LAST_MONTH


def test_an_invoice_for_the_running_month_is_one_error_line(live_server: LiveServer) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    env = {**clean, "AIFACTORY_URL": live_server.url, "AIFACTORY_TOKEN": live_server.admin_token}
    result = subprocess.run(
        [sys.executable, "-m", "aifactory", "invoice", "default", THIS_MONTH],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: month {THIS_MONTH} is not closed yet")  # once, not twice


def test_report_prints_headlines_and_writes_its_files(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "report"
    first_of_month = NOW.strftime("%Y-%m-01")
    shown = cli.ok(
        "report", "--from", LAST_MONTH + "-01", "--to", first_of_month, "--out", str(out)
    )
    assert f"funder report {LAST_MONTH}-01T00:00:00Z to {first_of_month}T00:00:00Z" in shown
    assert "0 GPU-h delivered" in shown
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["report.json", "report.csv", *(f"{c}.png" for c in CHARTS)])
    assert json.loads((out / "report.json").read_text())["gpu_hours_total"] == 0
    assert (out / "report.csv").read_text().startswith("metric,key,value")
    for chart in CHARTS:
        assert (out / f"{chart}.png").read_bytes().startswith(b"\x89PNG")
