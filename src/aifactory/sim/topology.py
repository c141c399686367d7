"""Topology figures of a replay: how gangs were placed across network blocks.

- `cross_block_share`: of the jobs that ran on several nodes, the share whose nodes span more
  than one block (0 is best).
- `blocks_per_gang`: blocks spanned per such job, on average (1 is best).
- `idle_scatter`: how scattered the idle nodes were, hour by hour: 1 − (idle nodes in the block
  with most of them ÷ all idle nodes), averaged over the hours with at least two idle nodes
  and a gang waiting (when scatter costs a gang its start). 0: every idle node in one block.

Computed from where finished jobs ran (`Finished.nodes`); a preempted job's lost runs are not
counted. Without blocks: no gang across blocks, one block per gang, no scatter.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from aifactory.scheduler import NodeView
from aifactory.sim.engine import Finished

SAMPLE_S = 3600.0


def topology_figures(finished: Sequence[Finished], nodes: Sequence[NodeView]) -> dict[str, float]:
    block = {node.id: node.block for node in nodes}
    gangs = [f for f in finished if len(f.nodes) > 1]
    spans = [len({block[n] for n in f.nodes}) for f in gangs]
    return {
        "cross_block_share": sum(1 for s in spans if s > 1) / len(spans) if spans else 0.0,
        "blocks_per_gang": sum(spans) / len(spans) if spans else 0.0,
        "idle_scatter": idle_scatter(finished, nodes),
    }


def idle_scatter(finished: Sequence[Finished], nodes: Sequence[NodeView]) -> float:
    if all(node.block is None for node in nodes) or not finished:
        return 0.0
    block = {node.id: node.block for node in nodes}
    # Changes over time: jobs on each node (key: node id), gangs waiting (key: None).
    changes: dict[float, list[tuple[str | None, int]]] = defaultdict(list)
    for run in finished:
        for node_id in run.nodes:
            changes[run.start].append((node_id, 1))
            changes[run.end].append((node_id, -1))
        if len(run.nodes) > 1:
            changes[run.job.submit].append((None, 1))
            changes[run.start].append((None, -1))
    moments = sorted(changes)
    busy: Counter[str | None] = Counter()
    scatters: list[float] = []
    step, at, end = 0, moments[0], moments[-1]
    while at < end:
        while step < len(moments) and moments[step] <= at:
            for key, delta in changes[moments[step]]:
                busy[key] += delta
            step += 1
        if busy[None] > 0:  # a gang waits
            idle = Counter(block[n] for n in block if busy[n] == 0)
            total = sum(idle.values())
            if total >= 2:
                scatters.append(1 - max(idle.values()) / total)
        at += SAMPLE_S
    return sum(scatters) / len(scatters) if scatters else 0.0
