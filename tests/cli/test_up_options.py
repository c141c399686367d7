"""`aifactory up` refuses bad settings before it creates anything."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aifactory.cli.main import app


def test_up_refuses_an_unknown_or_simulator_only_policy(tmp_path: Path) -> None:
    oracle = CliRunner().invoke(app, ["up", "--policy", "oracle", "--data-dir", str(tmp_path)])
    assert oracle.exit_code != 0
    assert "only in the simulator" in oracle.output
    from_env = CliRunner().invoke(
        app, ["up", "--data-dir", str(tmp_path)], env={"AIFACTORY_POLICY": "magic"}
    )
    assert from_env.exit_code != 0
    assert "unknown policy 'magic'" in from_env.output
    assert not (tmp_path / "aifactory.db").exists()  # refused before anything was created
