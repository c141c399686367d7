"""Workload traces: loaders for the shipped ITP traces, Alibaba openb, and a generic CSV.

A `TraceJob` is one recorded job: when it was submitted, how long it really ran (known to the
simulator only), how many GPUs it used, and who it belongs to. Generic CSV format, one job per
row, header required:

    submit_time,duration,gpus,[nodes],[project],[user],[time_limit],[name]

times in seconds (`submit_time` relative to any origin); `nodes` defaults to the fewest 8-GPU
nodes that hold `gpus`; `time_limit` (the user's requested limit) is generated when absent.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

ITP_CLUSTERS = tuple(f"cluster{i:02d}" for i in range(1, 11))
GPUS_PER_NODE = 8


@dataclass(frozen=True, slots=True)
class TraceJob:
    job_id: int
    submit: float
    duration: float  # the true runtime: never shown to a scheduler
    gpus: int
    nodes: int = 1
    project: str = "default"
    user: str = "user"
    time_limit: float | None = None
    name: str = ""
    preemptible: bool = False
    one_block: bool = False  # a gang that must run inside one network block

    @property
    def gpus_per_node(self) -> int:
        return math.ceil(self.gpus / self.nodes)


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file, row and column."""


def nodes_for(gpus: int, per_node: int = GPUS_PER_NODE) -> int:
    """A job larger than a node is a gang over whole nodes (a 64-GPU job takes 8 nodes)."""
    return max(1, math.ceil(gpus / per_node))


def itp_path(cluster: str) -> Path:
    if cluster not in ITP_CLUSTERS:
        raise TraceError(f"unknown ITP cluster {cluster!r}; known: {', '.join(ITP_CLUSTERS)}")
    return Path(str(files("aifactory.sim") / "data" / "itp" / f"{cluster}.csv.gz"))


def load_itp(clusters: Iterable[str] = ITP_CLUSTERS) -> list[TraceJob]:
    """ITP jobs of the given clusters on one time axis; each cluster is a project."""
    rows: list[tuple[float, float, int, str]] = []
    for cluster in clusters:
        for row in _csv_rows(itp_path(cluster)):
            rows.append(
                (
                    float(row["submission_time"]),
                    float(row["duration"]),
                    int(row["num_gpu"]),
                    cluster,
                )
            )
    rows.sort(key=lambda r: (r[0], r[3]))
    return [
        TraceJob(job_id=i + 1, submit=s, duration=d, gpus=g, nodes=nodes_for(g), project=c, user=c)
        for i, (s, d, g, c) in enumerate(rows)
    ]


def load_openb(path: Path) -> list[TraceJob]:
    """Alibaba openb pods: whole-GPU requests rounded up, fractional ones as 1 GPU; tenant =
    QoS class. CPU-only pods and pods never scheduled or without an end are left out."""
    jobs: list[TraceJob] = []
    for row in _csv_rows(path):
        gpus = int(row["num_gpu"])
        if gpus == 0 or not row["deletion_time"] or not row["scheduled_time"]:
            continue
        created, deleted = float(row["creation_time"]), float(row["deletion_time"])
        start = float(row["scheduled_time"])
        jobs.append(
            TraceJob(
                job_id=len(jobs) + 1,
                submit=created,
                duration=max(1.0, deleted - start),
                gpus=gpus,
                nodes=1,
                project=row["qos"] or "none",
                user=row["qos"] or "none",
                name=row["name"],
            )
        )
    return sorted(jobs, key=lambda j: (j.submit, j.job_id))


def openb_nodes(path: Path) -> list[int]:
    """GPUs of each GPU node in the openb node list."""
    return [int(row["gpu"]) for row in _csv_rows(path) if int(row["gpu"]) > 0]


def load_generic(path: Path) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    for line, row in enumerate(_csv_rows(path), start=2):
        jobs.append(_generic_job(path, line, row, len(jobs) + 1))
    return sorted(jobs, key=lambda j: (j.submit, j.job_id))


def _generic_job(path: Path, line: int, row: dict[str, str], job_id: int) -> TraceJob:
    def number(column: str, default: float | None = None) -> float:
        text = (row.get(column) or "").strip()
        if not text:
            if default is None:
                raise TraceError(f"{path}:{line}: column {column!r} is required")
            return default
        try:
            value = float(text)
        except ValueError:
            raise TraceError(f"{path}:{line}: {column} {text!r} is not a number") from None
        if value < 0 or math.isnan(value):
            raise TraceError(f"{path}:{line}: {column} must be 0 or more")
        return value

    gpus = int(number("gpus"))
    nodes = int(number("nodes", nodes_for(gpus)))
    limit = number("time_limit", 0.0) or None
    if nodes < 1:
        raise TraceError(f"{path}:{line}: nodes must be 1 or more")
    return TraceJob(
        job_id=job_id,
        submit=number("submit_time"),
        duration=number("duration"),
        gpus=gpus,
        nodes=nodes,
        project=row.get("project") or "default",
        user=row.get("user") or row.get("project") or "user",
        time_limit=limit,
        name=row.get("name") or "",
    )


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as handle:
            yield from csv.DictReader(handle)
    except FileNotFoundError:
        raise TraceError(f"no such trace file: {path}") from None
    except KeyError as exc:
        raise TraceError(f"{path}: missing column {exc}") from None


def first(jobs: list[TraceJob], count: int | None) -> list[TraceJob]:
    """The first `count` jobs by submit time, renumbered from 1."""
    chosen = jobs if count is None else jobs[:count]
    return [replace(job, job_id=i + 1) for i, job in enumerate(chosen)]
