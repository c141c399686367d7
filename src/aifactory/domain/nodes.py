"""Nodes: the machines a facility offers, and why a job could never fit on them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from aifactory.domain.jobs import JobSpec
from aifactory.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    site: str
    capacity: Resources
    gpu_model: str | None = None
    pool: str = "default"
    # Its network block (leaf switch or NVLink domain), as its executor reports it; None: the
    # facility declares no topology for it.
    block: str | None = None

    def could_ever_host(self, spec: JobSpec) -> bool:
        wrong_model = spec.gpus_per_node > 0 and spec.gpu_model not in (None, self.gpu_model)
        return not wrong_model and spec.per_node <= self.capacity


@dataclass(frozen=True, slots=True)
class Unfit:
    """The first field that makes a spec impossible on this facility, and why."""

    field: str
    reason: str


def why_never_fits(spec: JobSpec, nodes: Iterable[Node]) -> Unfit | None:
    """Return why no placement of `spec` can ever exist on `nodes`, or None if one can."""
    nodes = list(nodes)
    if not nodes:
        return Unfit("nodes", "the facility has no nodes registered")
    checks: list[tuple[str, str, int, int]] = [
        ("gpus", "GPUs", spec.gpus_per_node, max(n.capacity.gpus for n in nodes)),
        ("cpus", "CPUs", spec.cpus_per_node, max(n.capacity.cpus for n in nodes)),
        (
            "memory_mb",
            "MB of memory",
            spec.memory_mb_per_node,
            max(n.capacity.memory_mb for n in nodes),
        ),
    ]
    for field_name, noun, asked, largest in checks:
        if asked > largest:
            return Unfit(
                field_name, f"asks for {asked} {noun} per node; the largest node has {largest}"
            )
    if spec.gpu_model is not None and spec.gpus_per_node > 0:
        models = sorted({n.gpu_model for n in nodes if n.gpu_model})
        if spec.gpu_model not in models:
            offered = ", ".join(models) or "none"
            return Unfit(
                "gpu_model", f"no node has GPU model {spec.gpu_model!r} (offered: {offered})"
            )
    hosts = sum(1 for n in nodes if n.could_ever_host(spec))
    if hosts < spec.nodes:
        return Unfit(
            "nodes", f"asks for {spec.nodes} nodes of this shape; the facility has {hosts}"
        )
    return _why_no_block_fits(spec, nodes)


def _why_no_block_fits(spec: JobSpec, nodes: list[Node]) -> Unfit | None:
    """A gang that must run inside one block needs a block with enough nodes of its shape
    (nodes without a block count as one block together, as the scheduler counts them)."""
    if not spec.one_block or spec.nodes < 2 or all(n.block is None for n in nodes):
        return None
    per_block = Counter(n.block for n in nodes if n.could_ever_host(spec))
    most = max(per_block.values(), default=0)
    if most >= spec.nodes:
        return None
    return Unfit(
        "one_block",
        f"asks for {spec.nodes} nodes inside one network block; the largest block has {most} "
        "nodes of this shape",
    )
