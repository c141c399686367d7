"""Network topology in placement: a gang runs best inside one block.

A node's block (`NodeView.block`) is its leaf switch or NVLink domain: inside one block every
pair of nodes talks at full bandwidth, across blocks traffic shares the spine. Gangs (jobs
over several nodes) spend much of their time in collectives, so they go inside one block when
they can, as Kueue's topology-aware scheduling and Volcano's HyperNodes place them, and must
when their user asks (`PendingJob.one_block`, like Slurm's `--switches=1`).

`choose` picks a gang's nodes from the nodes that can take it, in the caller's order of
preference (best fit first):

- a block that holds the whole gang, if any: the one with the fewest such nodes (the tightest,
  so larger free blocks stay whole for larger gangs), then the one whose best node comes first;
- otherwise, unless the job requires one block, as few blocks as can hold it: the blocks with
  the most such nodes first.

Nodes without a block form one unnamed block together, so a facility that declares no topology
is a single block and placement there is what it was without topology.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aifactory.scheduler.snapshot import NodeKind


def choose(
    candidates: Sequence[str], count: int, kinds: Mapping[str, NodeKind], *, one_block: bool
) -> list[str] | None:
    """`count` of `candidates` (in preference order) by the rules above; None: no lawful set."""
    if len(candidates) < count:
        return None
    if count == 1:
        return list(candidates[:1])  # one node is inside one block wherever it is
    groups: dict[str | None, list[str]] = {}
    for node_id in candidates:
        groups.setdefault(kinds[node_id].block, []).append(node_id)
    if len(groups) == 1:
        return list(candidates[:count])
    # dicts keep insertion order: a group's position is where its best node stands
    ranked = list(groups.values())
    whole = [group for group in ranked if len(group) >= count]
    if whole:
        return min(whole, key=len)[:count]
    if one_block:
        return None
    chosen: list[str] = []
    for group in sorted(ranked, key=len, reverse=True):  # stable: ties keep preference order
        chosen.extend(group[: count - len(chosen)])
        if len(chosen) == count:
            break
    return chosen


def blocks_spanned(nodes: Sequence[str], kinds: Mapping[str, NodeKind]) -> int:
    """How many blocks a placement spans (nodes without a block count as one)."""
    return len({kinds[node_id].block for node_id in nodes})
