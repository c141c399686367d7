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


def test_up_refuses_a_trusted_proxy_that_is_no_address_or_network(tmp_path: Path) -> None:
    """uvicorn would keep a name as a literal no connection matches, and say nothing."""
    wide = {"COLUMNS": "200"}
    for given in ("proxy.example", "10.0.0.1/8"):  # a name; a network with host bits set
        args = ["up", "--data-dir", str(tmp_path), "--trusted-proxy", given]
        refused = CliRunner().invoke(app, args, env=wide)
        assert refused.exit_code != 0
        assert given in refused.output
    from_env = CliRunner().invoke(
        app,
        ["up", "--data-dir", str(tmp_path)],
        env={**wide, "AIFACTORY_TRUSTED_PROXIES": "10.0.0.1,*"},
    )
    assert from_env.exit_code != 0
    assert "'*' does not appear to be an IPv4 or IPv6 network" in from_env.output
    assert not (tmp_path / "aifactory.db").exists()
