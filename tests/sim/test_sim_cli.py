from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.cli.sim import POLICY_NAMES
from aifactory.sim.metrics import KEYS
from aifactory.sim.replay import POLICIES


def test_sim_prints_a_table_and_writes_design_json(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("submit_time,duration,gpus,project\n0,100,4,a\n1,50,8,b\n2,30,4,c\n")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app, ["sim", "--trace", str(trace), "--gpus", "8", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "fairshare" in result.output
    report = json.loads(out.read_text())
    assert report["jobs"] == 3
    assert report["gpus"] == 8
    assert set(report["policies"]) == {"fifo", "slurm", "fairshare", "oracle"}
    for figures in report["policies"].values():
        assert set(KEYS) <= set(figures)


def test_sim_help_names_the_policies_the_simulator_knows() -> None:
    """--help names them without importing the simulator; this keeps the two lists one."""
    assert tuple(POLICIES) == POLICY_NAMES


def test_sim_refuses_unknown_policies_and_traces(tmp_path: Path) -> None:
    bad_policy = CliRunner().invoke(app, ["sim", "--trace", "itp-cluster10", "--policies", "magic"])
    assert bad_policy.exit_code != 0
    assert "unknown policy 'magic'" in bad_policy.output
    bad_trace = CliRunner().invoke(app, ["sim", "--trace", str(tmp_path / "none.csv")])
    assert bad_trace.exit_code != 0
    assert "neither a scenario" in bad_trace.output


def tiny_trace(tmp_path: Path) -> Path:
    trace = tmp_path / "t.csv"
    trace.write_text("submit_time,duration,gpus,project\n0,100,4,a\n1,50,8,b\n2,30,4,c\n")
    return trace


def test_sim_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "figure.png"
    result = CliRunner().invoke(
        app, ["sim", "--trace", str(tiny_trace(tmp_path)), "--gpus", "8", "--plot", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_capacity_sweep_shows_waits_falling_as_the_facility_grows(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "--trace",
            str(tiny_trace(tmp_path)),
            "--sweep-gpus",
            "8,16",
            "--policies",
            "fifo,easy",
            "--gpu-cost",
            "25000",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["sweep"]
    assert [(r["gpus"], r["policy"]) for r in rows] == [
        (8, "fifo"),
        (8, "easy"),
        (16, "fifo"),
        (16, "easy"),
    ]
    easy = {r["gpus"]: r for r in rows if r["policy"] == "easy"}
    assert easy[16]["avg_wait_h"] < easy[8]["avg_wait_h"]
    assert easy[16]["capital_eur"] == 16 * 25_000
    bad = CliRunner().invoke(
        app, ["sim", "--trace", str(tiny_trace(tmp_path)), "--sweep-gpus", "lots"]
    )
    assert bad.exit_code != 0
    assert "GPU counts" in bad.output
