"""Named workloads (the scenarios of the shared traces README), generic CSV files and
synthetic workloads (`synthetic:SPEC`, `sim/synthetic.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from aifactory.scheduler import NodeView
from aifactory.sim.engine import cluster
from aifactory.sim.limits import with_limits
from aifactory.sim.traces import (
    GPUS_PER_NODE,
    TraceError,
    TraceJob,
    first,
    load_generic,
    load_itp,
    load_openb,
    openb_nodes,
)

OPENB_PODS = "openb_pod_list_default.csv"
OPENB_NODES = "openb_node_list_gpu_node.csv"
SYNTHETIC = "synthetic:"


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    jobs: list[TraceJob]
    nodes: tuple[NodeView, ...]
    shares: dict[str, float] = field(default_factory=dict)  # by project; empty: equal shares


def workload(
    trace: str,
    *,
    gpus: int | None = None,
    jobs: int | None = None,
    openb_dir: Path | None = None,
    seed: int = 1,
) -> Workload:
    """`trace`: itp-merged, itp-cluster04 (or itp-clusterNN), openb, a generic CSV path, or
    `synthetic:SPEC` (`synthetic.parse_spec`; `gpus` and `jobs` override the spec's, `seed`
    does not apply: the spec carries its own)."""
    if trace.startswith(SYNTHETIC):
        return _synthetic(trace, gpus=gpus, jobs=jobs)
    found, default_gpus, node_sizes = _load(trace, openb_dir)
    chosen = with_limits(first(found, jobs), seed=seed)
    if node_sizes is None or gpus is not None:
        total = gpus if gpus is not None else default_gpus
        if total is None:
            raise TraceError(f"{trace}: say how many GPUs to replay it on (--gpus)")
        node_sizes = [GPUS_PER_NODE] * max(1, total // GPUS_PER_NODE)
    return Workload(trace, chosen, cluster(node_sizes))


def _synthetic(trace: str, *, gpus: int | None, jobs: int | None) -> Workload:
    # imported here: the generator builds on this module's Workload
    from aifactory.sim.synthetic import generate, parse_spec

    spec = parse_spec(trace.removeprefix(SYNTHETIC))
    if gpus is not None:
        spec = replace(spec, gpus=gpus)
    if jobs is not None:
        spec = replace(spec, jobs=jobs)
    return replace(generate(spec), name=trace)


def _load(
    trace: str, openb_dir: Path | None
) -> tuple[list[TraceJob], int | None, list[int] | None]:
    if trace == "itp-merged":
        return load_itp(), 1280, None
    if trace.startswith("itp-cluster"):
        name = trace.removeprefix("itp-")
        return load_itp([name]), (576 if name == "cluster04" else None), None
    if trace == "openb":
        if openb_dir is None:
            raise TraceError(
                "openb is not shipped (no licence stated upstream): give the "
                "folder holding its CSV files with --openb-dir"
            )
        return (load_openb(openb_dir / OPENB_PODS), None, openb_nodes(openb_dir / OPENB_NODES))
    path = Path(trace)
    if not path.exists():
        raise TraceError(
            f"{trace!r} is neither a scenario (itp-merged, itp-cluster04, openb) nor a CSV file"
        )
    return load_generic(path), None, None
