"""The `aifactory` command against a real facility process, as a user runs it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FacilityProcess]:
    data = tmp_path_factory.mktemp("cli") / "data"
    data.mkdir()
    process = FacilityProcess(data, f"sqlite:///{data / 'af.db'}", virtual_gpus=4)
    process.start()
    yield process
    process.stop()
    process.kill_leftover_jobs()


def cli(
    *args: str, env: dict[str, str] | None = None, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    if config is not None:
        clean["AIFACTORY_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def as_admin(facility: FacilityProcess) -> dict[str, str]:
    assert facility.token is not None
    return {"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": facility.token}


def test_submit_show_logs_and_jobs_for_scripts(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    submitted = cli(
        "submit",
        "--json",
        "--gpus",
        "1",
        "--wait",
        "--",
        "bash",
        "-c",
        "echo hallo $CUDA_VISIBLE_DEVICES",
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["state"] == "SUCCEEDED"
    shown = json.loads(cli("show", "--json", str(job["id"]), env=env).stdout)
    assert shown["state"] == "SUCCEEDED"
    assert [e["to_state"] for e in shown["events"]][-1] == "SUCCEEDED"
    gpu = shown["placement"][next(iter(shown["placement"]))]["gpu_ids"][0]
    assert cli("logs", str(job["id"]), env=env).stdout == f"hallo {gpu}\n"
    listed = json.loads(cli("jobs", "--json", env=env).stdout)
    assert job["id"] in [j["id"] for j in listed]
    table = cli("show", str(job["id"]), env=env).stdout
    assert "SUCCEEDED" in table
    assert "history" in table


def test_logs_follow_streams_until_the_job_ends(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    job = json.loads(
        cli(
            "submit",
            "--json",
            "--",
            "bash",
            "-c",
            "for i in 1 2 3; do echo line $i; sleep 0.3; done",
            env=env,
        ).stdout
    )
    followed = cli("logs", "-f", str(job["id"]), env=env)
    assert followed.returncode == 0
    assert followed.stdout == "line 1\nline 2\nline 3\n"


def test_submit_wait_follows_the_job_as_srun_would(facility: FacilityProcess) -> None:
    """Its state as it changes on stderr, its output as it comes on stdout, its exit code."""
    env = as_admin(facility)
    script = "echo first; sleep 1; echo second; exit 3"
    ran = cli("submit", "--wait", "--", "bash", "-c", script, env=env)
    assert ran.returncode == 3
    assert ran.stdout == "first\nsecond\n"
    said = ran.stderr.splitlines()
    assert said[0].startswith("job ")
    assert " in project default" in said[0]
    assert any(" RUNNING on " in line for line in said), said
    assert said[-1].endswith(" FAILED: exited with code 3"), said


def test_logs_as_json_for_scripts(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    ran = cli("submit", "--json", "--wait", "--", "bash", "-c", "echo a; echo b", env=env)
    job_id = str(json.loads(ran.stdout)["id"])
    whole = json.loads(cli("logs", "--json", job_id, env=env).stdout)
    assert (whole["text"], whole["complete"]) == ("a\nb\n", True)
    followed = [
        json.loads(line)
        for line in cli("logs", "-f", "--json", job_id, env=env).stdout.splitlines()
    ]
    assert "".join(c["text"] for c in followed) == "a\nb\n"
    assert followed[-1]["complete"] is True
    last = json.loads(cli("logs", "--json", "--tail", "1", job_id, env=env).stdout)
    assert last["text"] == "b\n"


def test_cancel_stops_a_running_job(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    job = json.loads(cli("submit", "--json", "--", "sleep", "60", env=env).stdout)
    assert cli("cancel", str(job["id"]), env=env).returncode == 0
    waited = cli("submit", "--json", "--wait", "--", "true", env=env)  # the queue moves on
    assert json.loads(waited.stdout)["state"] == "SUCCEEDED"
    with facility.client() as api:
        assert api.wait(job["id"], timeout_s=30)["state"] == "CANCELLED"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["submit", "--gpus", "-1", "--", "true"], "error: gpus:"),
        (["submit", "--gpus", "99", "--", "true"], "can never run on this facility"),
        (["submit", "--project", "nope", "--", "true"], "no project named 'nope'"),
        (["show", "999999"], "job 999999 not found"),
        (["cancel", "999999"], "job 999999 not found"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_failing_exit(
    facility: FacilityProcess, args: list[str], expected: str
) -> None:
    result = cli(*args, env=as_admin(facility))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_or_missing_token_and_an_unreachable_facility(facility: FacilityProcess) -> None:
    bad = cli("jobs", env={"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": "afy_nope"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: invalid API token"
    down = cli("jobs", env={"AIFACTORY_URL": "http://127.0.0.1:9", "AIFACTORY_TOKEN": "x"})
    assert down.returncode == 1
    assert down.stderr.startswith("error: cannot reach the facility at http://127.0.0.1:9")
    assert len(down.stderr.strip().splitlines()) == 1


def test_login_saves_url_and_token_privately_and_flags_win(
    facility: FacilityProcess, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    assert facility.token is not None
    login = cli("--url", facility.url, "login", "--token", facility.token, config=config)
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": facility.url, "token": facility.token}
    assert "admin" in cli("whoami", config=config).stdout
    overridden = cli("whoami", config=config, env={"AIFACTORY_TOKEN": "afy_wrong"})
    assert overridden.returncode == 1
    flagged = cli(
        "--token", facility.token, "whoami", config=config, env={"AIFACTORY_TOKEN": "afy_wrong"}
    )
    assert flagged.returncode == 0


def test_tenancy_commands_build_a_project_for_a_new_user(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    assert cli("org", "create", "tu-delft", "--kind", "university", env=env).returncode == 0
    made = json.loads(cli("user", "create", "femke", "--json", env=env).stdout)
    assert (
        cli("project", "create", "nlp", "--org", "tu-delft", "--owner", "femke", env=env).returncode
        == 0
    )
    femke = {"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": made["token"]}
    me = json.loads(cli("whoami", "--json", env=femke).stdout)
    assert me["default_project"] == "nlp"
    members = json.loads(cli("member", "list", "nlp", "--json", env=femke).stdout)
    assert members == [{"user": "femke", "role": "owner"}]
    token = json.loads(cli("token", "create", "--name", "laptop", "--json", env=femke).stdout)
    revoked = cli("token", "revoke", str(token["id"]), env=femke)
    assert revoked.returncode == 0
    reused = cli("jobs", env={"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": token["token"]})
    assert reused.stderr.strip() == "error: this API token was revoked"


def test_queue_and_show_say_why_a_job_waits(facility: FacilityProcess) -> None:
    env = as_admin(facility)
    running = json.loads(
        cli("submit", "--json", "--gpus", "4", "--", "sleep", "60", env=env).stdout
    )
    waiting = json.loads(
        cli("submit", "--json", "--gpus", "4", "--time-limit", "10m", "--", "true", env=env).stdout
    )
    with facility.client() as api:
        deadline = time.monotonic() + 30
        while api.job(running["id"])["state"] != "RUNNING":
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.1)
    queued = json.loads(cli("queue", "--json", env=env).stdout)
    entry = next(j for j in queued if j["id"] == waiting["id"])
    assert entry["queue"]["reason"].startswith("waiting for room: needs 4 GPU(s)")
    shown = cli("show", str(waiting["id"]), env=env).stdout
    assert "queue   #" in shown
    assert "waiting for room" in shown
    table = cli("queue", env=env).stdout
    assert str(waiting["id"]) in table
    for job_id in (waiting["id"], running["id"]):
        cli("cancel", str(job_id), env=env)


def test_an_operator_recovers_a_lost_admin_token_from_the_database(
    facility: FacilityProcess, tmp_path: Path
) -> None:
    args = ["--data-dir", str(facility.data_dir), "--database-url", facility.database_url]
    recovered = cli("admin-token", *args)
    assert recovered.returncode == 0, recovered.stderr
    token = recovered.stdout.strip().removeprefix("admin token: ")
    assert token.startswith("afy_")
    assert token != facility.token
    me = cli("whoami", "--json", env={"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": token})
    assert json.loads(me.stdout)["name"] == "admin"
    nobody = cli("admin-token", *args, "--user", "ghost")
    assert nobody.returncode != 0
    assert "no admin named 'ghost'" in nobody.stderr
    empty = cli("admin-token", "--data-dir", str(tmp_path / "none"))
    assert empty.returncode != 0
    assert "no facility in" in empty.stderr
