"""Topology figures of a replay, and synthetic workloads on a facility with blocks."""

from __future__ import annotations

import pytest

from aifactory.sim.engine import Finished, cluster
from aifactory.sim.synthetic import SyntheticSpec, generate, parse_spec
from aifactory.sim.topology import topology_figures
from aifactory.sim.traces import TraceError, TraceJob

NODES = cluster([8] * 4, 2)  # b000: n0000, n0001; b001: n0002, n0003


def _ran(job_id: int, nodes: tuple[str, ...], submit: float, start: float, end: float) -> Finished:
    job = TraceJob(job_id, submit, end - start, 8 * len(nodes), len(nodes))
    return Finished(job, start, end, nodes)


def test_gangs_across_blocks_are_counted() -> None:
    finished = [
        _ran(1, ("n0000", "n0001"), 0.0, 0.0, 100.0),
        _ran(2, ("n0001", "n0002"), 0.0, 100.0, 200.0),
        _ran(3, ("n0003",), 0.0, 0.0, 50.0),  # a lone job is no gang
    ]
    figures = topology_figures(finished, NODES)
    assert figures["cross_block_share"] == 0.5
    assert figures["blocks_per_gang"] == 1.5


def test_idle_nodes_scattered_while_a_gang_waits() -> None:
    # For the first hour n0000 and n0002 are busy: the idle n0001 and n0003 sit in two blocks
    # while gang 3 waits (scatter 1 − 1/2); in the second hour nothing waits.
    finished = [
        _ran(1, ("n0000",), 0.0, 0.0, 3600.0),
        _ran(2, ("n0002",), 0.0, 0.0, 3600.0),
        _ran(3, ("n0000", "n0001"), 0.0, 3600.0, 7200.0),
    ]
    assert topology_figures(finished, NODES)["idle_scatter"] == pytest.approx(0.5)


def test_without_blocks_every_figure_is_zero() -> None:
    finished = [_ran(1, ("n0000", "n0001"), 0.0, 0.0, 100.0)]
    figures = topology_figures(finished, cluster([8] * 4))
    assert figures == {"cross_block_share": 0.0, "blocks_per_gang": 1.0, "idle_scatter": 0.0}


def test_a_synthetic_facility_with_blocks_and_gangs_that_require_one() -> None:
    spec = parse_spec("jobs=400,block_nodes=8,one_block_share=0.5,seed=3")
    work = generate(spec)
    assert {node.block for node in work.nodes} == {"b000", "b001", "b002", "b003"}
    required = [job for job in work.jobs if job.one_block]
    assert required
    assert all(1 < job.nodes <= 8 for job in required)
    gangs = [job for job in work.jobs if 1 < job.nodes <= 8]
    assert len(required) < len(gangs)
    # blocks alone change no job
    plain = generate(SyntheticSpec(jobs=400, seed=3))
    assert [j.duration for j in plain.jobs] == [
        j.duration for j in generate(SyntheticSpec(jobs=400, seed=3, block_nodes=8)).jobs
    ]


def test_requiring_one_block_needs_blocks() -> None:
    with pytest.raises(TraceError, match="one_block_share needs block_nodes"):
        SyntheticSpec(one_block_share=0.5)
