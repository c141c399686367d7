"""The commands that only talk HTTP start without the facility's heavy modules (issue #16).

Each command runs in a fresh interpreter, as a user runs it, against an address where no
facility listens (so it goes as far as its request), and reports the modules it imported.
Nothing here is timed: benchmarks/cli_startup.py measures what the start-up costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres import free_port

# What the in-process commands (up, admin-token, sim) and the server need, and no HTTP command
# does. pydantic is not here: typer itself coerces options with it.
HEAVY = (
    "matplotlib",
    "numpy",
    "PIL",
    "torch",
    "reportlab",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "pydantic_settings",
    "psutil",
    "pynvml",
    "aifactory.accounting",
    "aifactory.api",
    "aifactory.config",
    "aifactory.control",
    "aifactory.executors",
    "aifactory.governance",
    "aifactory.recipes.dutch_gpt",
    "aifactory.scheduler",
    "aifactory.server",
    "aifactory.services",
    "aifactory.sim",
    "aifactory.store",
    "aifactory.web",
)

# argv[1]: where to write the imported modules; the rest: the command's arguments
PROBE = """
import json, sys
from aifactory.cli.main import main

out, sys.argv = sys.argv[1], ["aifactory", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
with open(out, "w") as f:
    json.dump(sorted(sys.modules), f)
"""

LIGHT = [
    ["--help"],
    ["jobs", "--help"],
    ["jobs", "--json"],
    ["show", "1"],
    ["submit", "--gpus", "1", "--", "python", "train.py"],
    ["submit", "--recipe", "dutch-gpt-pretrain", "--config", "small"],
    ["queue"],
    ["facility"],
    ["usage"],
    ["permissions"],
    ["recipes"],
    ["session", "start", "--gpus", "1", "--memory", "8G", "--idle-timeout", "30m"],
    ["session", "list"],
    ["session", "open", "1"],
]
LOCAL = (["permissions"], ["recipes"])  # they answer without the facility


def imported_by(args: list[str], out: Path) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    env["AIFACTORY_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env["AIFACTORY_CONFIG"] = str(out.parent / "no-config.json")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(out.read_text())
    return modules, done.stdout + done.stderr


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_a_command_that_talks_http_imports_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    modules, output = imported_by(args, tmp_path / "modules.json")
    if "--help" not in args and args not in LOCAL:
        assert "cannot reach the facility" in output  # it got as far as its request
    assert heavy(modules) == []


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    """The check above can fail: `sim`, refusing a trace, has imported the simulator."""
    trace = str(tmp_path / "none.csv")
    modules, output = imported_by(["sim", "--trace", trace], tmp_path / "modules.json")
    assert "neither a scenario" in output
    assert "aifactory.sim.replay" in heavy(modules)
