"""`aifactory recipes`, `submit --recipe` (the spec it expands to, shown by --dry-run),
`recipes install-data` and the training figures `show` prints, against the real API (SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aifactory.cli.formats import when
from aifactory.cli.main import app
from aifactory.store.db import Database
from aifactory.store.models import JobEvent
from tests.conftest import LiveServer

NOWHERE = ["--url", "http://127.0.0.1:9", "--token", "afy_none"]  # nothing is asked of it


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()


def run(*args: str, server: LiveServer | None = None) -> Result:
    target = ["--url", server.url, "--token", server.admin_token] if server else NOWHERE
    return CliRunner().invoke(app, [*target, *args], env={"COLUMNS": "250"})


def ok(*args: str, server: LiveServer | None = None) -> str:
    result = run(*args, server=server)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def dry_run(*args: str, server: LiveServer | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(ok("submit", "--dry-run", *args, server=server))
    return spec


def test_recipes_lists_the_recipes_and_their_configs() -> None:
    listed = ok("recipes")
    for cell in ["dutch-gpt-pretrain", "dutch-gpt-finetune", "tiny", "small", "medium"]:
        assert cell in listed, cell
    found = json.loads(ok("recipes", "--json"))
    assert [c["name"] for c in found["configs"]] == ["tiny", "small", "medium"]
    assert found["datasets"] == ["dutch-books", "dutch-eval"]


def test_a_recipe_expands_to_an_ordinary_job_spec() -> None:
    spec = dry_run("--recipe", "dutch-gpt-pretrain", "--config", "small")
    assert spec == {
        "name": "dutch-gpt-pretrain-small",
        "command": ["python", "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "small"],
        "gpus": 1,
        "nodes": 1,
        "cpus": 8,
        "memory_mb": 65536,
        "time_limit_s": 3 * 3600,
        "preemptible": True,
        "datasets": ["dutch-books", "dutch-eval"],
        "env": {},
        "priority": 0,
    }


def test_flags_win_over_the_recipes_defaults_and_more_gpus_use_torchrun() -> None:
    spec = dry_run(
        "--recipe", "dutch-gpt-pretrain", "--gpus", "4", "--time-limit", "2h", "--cpus", "2",
        "--project", "nlp", "--name", "mine", "--not-preemptible", "-e", "SEED=1",
    )  # fmt: skip
    assert spec["command"] == [
        "torchrun", "--standalone", "--nproc-per-node=4", "-m", "aifactory.recipes.dutch_gpt",
        "pretrain", "--config", "tiny",
    ]  # fmt: skip
    assert (spec["gpus"], spec["time_limit_s"], spec["cpus"], spec["memory_mb"]) == (
        4,
        7200,
        2,
        2048,
    )
    assert (spec["project"], spec["name"], spec["preemptible"]) == ("nlp", "mine", False)
    assert spec["env"] == {"SEED": "1"}


def test_a_plain_dry_run_shows_the_defaults() -> None:
    spec = dry_run("--", "python3", "train.py")
    assert spec["command"] == ["python3", "train.py"]
    assert (spec["gpus"], spec["cpus"], spec["memory_mb"], spec["time_limit_s"]) == (
        0,
        1,
        1024,
        3600,
    )
    assert "preemptible" not in spec  # as the project's programme says


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--recipe", "nope"], "no recipe 'nope'"),
        (["--recipe", "dutch-gpt-pretrain", "--config", "huge"], "no config 'huge'"),
        (["--recipe", "dutch-gpt-finetune"], "give --from"),
        (["--recipe", "dutch-gpt-pretrain", "--from", "/ckpt"], "--from is for"),
        (["--recipe", "dutch-gpt-pretrain", "--", "true"], "leave out the command"),
        (["--config", "tiny", "--", "true"], "go with --recipe"),
    ],
)
def test_bad_recipe_requests_are_refused(args: list[str], said: str) -> None:
    result = run("submit", "--dry-run", *args)
    assert result.exit_code != 0
    assert said in result.output


def test_finetune_from_a_job_starts_from_its_checkpoint_dir(live_server: LiveServer) -> None:
    assert live_server.state.jobs_dir is not None
    first = json.loads(ok("submit", "--json", "--", "true", server=live_server))
    spec = dry_run("--recipe", "dutch-gpt-finetune", "--from", str(first["id"]), server=live_server)
    checkpoints = live_server.state.jobs_dir / str(first["id"]) / "work" / "checkpoints"
    assert spec["command"][-2:] == ["--from", str(checkpoints)]
    assert spec["command"][3:4] == ["finetune"]
    by_path = dry_run("--recipe", "dutch-gpt-finetune", "--from", "/data/ckpt.pt")
    assert by_path["command"][-2:] == ["--from", "/data/ckpt.pt"]


def test_install_data_copies_registers_and_grants_once(live_server: LiveServer) -> None:
    root = live_server.state.data_root
    assert root is not None
    args = ["recipes", "install-data", "--data-root", str(root), "--grant", "default"]
    said = ok(*args, server=live_server)
    assert "dutch-books: registered, v1 at" in said
    assert "dutch-eval: granted to project default" in said
    assert (root / "facility/dutch-eval/v1/LICENSE-Alpino-CC-BY-SA-4.0.txt").exists()
    again = ok(*args, server=live_server)
    assert "dutch-books: registered already" in again
    assert "dutch-eval: project default may use it already" in again

    shown = json.loads(ok("datasets", "show", "dutch-eval", "--json", server=live_server))
    (version,) = shown["versions"]
    assert (version["classification"], version["residency"]) == ("public", "NL")
    assert version["licence"] == "CC-BY-SA-4.0"
    assert shown["project"] is None  # a facility dataset


def test_show_prints_the_latest_figures_and_what_preemptions_lost(
    live_server: LiveServer,
) -> None:
    assert live_server.state.jobs_dir is not None
    job = json.loads(ok("submit", "--json", "--gpus", "2", "--", "true", server=live_server))
    home = live_server.state.jobs_dir / str(job["id"]) / "work"  # the job's own directory
    home.mkdir(parents=True)
    records = [
        {"at": 1000.0, "attempt": 1, "event": "train", "step": 40, "loss": 2.5,
         "tokens_per_s": 51234.0},
        {"at": 1001.0, "attempt": 1, "event": "eval", "step": 40, "eval_ppl": 12.25},
        {"at": 1002.0, "attempt": 1, "event": "checkpoint", "step": 40},
    ]  # fmt: skip
    (home / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with live_server.db.session() as session:
        for at, before, after in [(990.0, "ADMITTED", "RUNNING"), (1012.0, "RUNNING", "PREEMPTED")]:
            session.add(
                JobEvent(job_id=job["id"], at=at, from_state=before, to_state=after, actor="t")
            )

    shown = ok("show", str(job["id"]), server=live_server)

    assert "train   step 40, loss 2.5, 51,234 tokens/s, eval ppl 12.25 (attempt 1)" in shown
    assert f"ckpt    step 40 at {when(datetime.fromtimestamp(1002.0, UTC).isoformat())}" in shown
    assert str(home / "checkpoints") in shown
    assert "lost    20 GPU-s to the preemption at" in shown  # (1012 − 1002) s × 2 GPUs
    assert "(checkpoint at step 40, 0 steps)" in shown
