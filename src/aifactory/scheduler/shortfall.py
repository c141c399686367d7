"""What keeps a waiting job off the nodes, named: which resource is short, on the nodes it may
use at all. Pure.

The nodes a job may use are those with the GPU model it asks for, in a country its data may be
processed in (`placement.can_host`), and big enough to ever hold its share. A reason names the
resource that no (or too few) of those nodes have free now — GPUs, CPU slots or memory —
with the most that is free, and says when the job may use only some nodes (its data's
residency, its GPU model): "the emptiest node has 4 GPUs free" told a job short of CPU slots
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aifactory.domain.resources import Resources
from aifactory.scheduler.placement import can_host
from aifactory.scheduler.snapshot import NodeKind, NodeView, PendingJob

DIMENSIONS = (("gpus", "GPUs"), ("cpus", "CPU slots"), ("memory_mb", "MB of memory"))


def ask(job: PendingJob) -> str:
    model = f" of model {job.gpu_model}" if job.gpu_model and job.per_node.gpus else ""
    nodes = f"{job.nodes} nodes, each with " if job.nodes > 1 else ""
    return (
        f"{nodes}{job.per_node.gpus} GPU(s){model}, {job.per_node.cpus} CPU(s) and "
        f"{job.per_node.memory_mb} MB"
    )


def never(job: PendingJob, capacity: Mapping[str, Resources], kinds: Mapping[str, NodeKind]) -> str:
    """Why no node of the facility, empty, could ever take it."""
    allowed = [n for n in capacity if can_host(job, kinds[n])]
    if not allowed:
        return f"can never start here: {_nowhere(job, kinds)}"
    big = [n for n in allowed if job.per_node <= capacity[n]]
    if len(big) < job.nodes:
        short = [
            f"{label} (the largest has {max(getattr(capacity[n], key) for n in allowed)})"
            for key, label in DIMENSIONS
            if sum(getattr(capacity[n], key) >= getattr(job.per_node, key) for n in allowed)
            < job.nodes
        ]
        too_small = "; ".join(short) or "all of it on one node"
        return f"can never start here: needs {ask(job)}; no node is that big in {too_small}"
    return f"can never start here: needs {ask(job)}"


def out_of_service(
    job: PendingJob, nodes: Sequence[NodeView], kinds: Mapping[str, NodeKind]
) -> str | None:
    """When only nodes out of service (drained) could take it: which, and why; else None."""
    hosts = [n for n in nodes if can_host(job, kinds[n.id]) and job.per_node <= n.capacity]
    up = sum(1 for n in hosts if n.schedulable)
    if len(hosts) < job.nodes or up >= job.nodes:
        return None
    down = [n for n in hosts if not n.schedulable]
    named = "; ".join(f"{n.id} ({n.out_of_service or 'out of service'})" for n in down[:5])
    more = f" and {len(down) - 5} more" if len(down) > 5 else ""
    return (
        f"waiting for nodes out of service: needs {ask(job)}, and only nodes out of service "
        f"can hold it: {named}{more}"
    )


def waiting(
    job: PendingJob,
    free: Mapping[str, Resources],
    capacity: Mapping[str, Resources],
    kinds: Mapping[str, NodeKind],
) -> str:
    """Why it does not fit now, on the nodes it may use."""
    usable = [n for n in free if can_host(job, kinds[n]) and job.per_node <= capacity[n]]
    short = [_short(job, free, usable, key, label) for key, label in DIMENSIONS]
    named = "; ".join(s for s in short if s) or "no node it may use has all of it free at once"
    return f"waiting for room: needs {ask(job)}; {named}{_limited(job, usable, len(free))}"


def _short(
    job: PendingJob, free: Mapping[str, Resources], usable: list[str], key: str, label: str
) -> str | None:
    need = getattr(job.per_node, key)
    having = sum(1 for n in usable if getattr(free[n], key) >= need)
    if need == 0 or having >= job.nodes:
        return None
    most = max((getattr(free[n], key) for n in usable), default=0)
    if job.nodes == 1:
        return f"{label} are short: at most {most} free on a node it may use"
    return f"{label} are short: {having} of the {job.nodes} nodes it needs have them free"


def _limited(job: PendingJob, usable: list[str], nodes: int) -> str:
    """Said when only some of the `nodes` schedulable nodes may take it at all."""
    if len(usable) == nodes:
        return ""
    why = []
    if job.countries is not None:
        why.append(f"its data may be processed only in {', '.join(sorted(job.countries))}")
    if job.gpu_model and job.per_node.gpus:
        why.append(f"it asks for GPUs of model {job.gpu_model}")
    because = f" ({'; '.join(why)})" if why else ""
    return f"; it may use {len(usable)} of the facility's {nodes} nodes{because}"


def _nowhere(job: PendingJob, kinds: Mapping[str, NodeKind]) -> str:
    there = [k for k in kinds.values() if job.countries is None or k.country in job.countries]
    places = ", ".join(sorted(job.countries or ()))
    if not there:
        return f"its data may be processed only in {places}, and no node stands there"
    where = f" in {places}" if job.countries is not None else ""
    return f"no node{where} has GPUs of model {job.gpu_model}"
