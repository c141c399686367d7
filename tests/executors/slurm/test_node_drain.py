"""Drain and resume on the real test cluster: `scontrol update` takes the node out, sinfo shows
it drained with the operator's reason, the health probe reports it, and resume brings it back."""

from __future__ import annotations

import pytest

from aifactory.domain.node_health import Checkup
from aifactory.executors.slurm.commands import SlurmClient
from aifactory.executors.slurm.nodes import SlurmNodes

pytestmark = pytest.mark.slow


def sinfo(client: SlurmClient, node: str) -> tuple[str, str]:
    """The node's state and reason as sinfo shows them (`drained`, `fan replaced [olga]`)."""
    line = client.output("sinfo", ["--noheader", "--Node", f"--nodes={node}", "--format=%T|%E"])
    state, reason = line.splitlines()[0].split("|", 1)
    return state, reason


def test_drain_and_resume_map_to_scontrol_and_sinfo_shows_them(slurm_client: SlurmClient) -> None:
    nodes = SlurmNodes(slurm_client, partition="aif")
    nodes.drain("n2", "fan replaced [olga]")
    try:
        state, reason = sinfo(slurm_client, "n2")
        assert state in ("drained", "draining"), state  # draining while a job still runs
        assert reason == "fan replaced [olga]"
        checked = {c.node_id: c for c in nodes.check()}
        assert checked["n1"] == Checkup("n1")
        problem = checked["n2"].problem or ""
        # scontrol adds who drained it in Slurm and when: `… [root@2026-12-07T18:47:33])`
        assert problem.startswith("Slurm: "), problem
        assert "DRAIN" in problem, problem
        assert "(fan replaced [olga] [" in problem, problem
    finally:
        nodes.resume("n2")
    # `idle*` until Slurm has pinged the resumed node's slurmd: not a failure (SlurmNodes)
    assert sinfo(slurm_client, "n2")[0].rstrip("*") in ("idle", "mixed", "allocated")
    assert {c.node_id: c.problem for c in nodes.check()}["n2"] is None
    nodes.resume("n2")  # resuming a node in service again is no error
