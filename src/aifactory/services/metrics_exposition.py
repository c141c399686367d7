"""`/metrics` in Prometheus' text format, through the official client (docs/metrics.md).

Two kinds of metric, kept apart on purpose:
- the facility's, made at each scrape from the database (services.metrics): the same from every
  API worker, whichever process runs the control loop;
- this process's own (`ProcessMetrics`): its API requests and, where the control loop runs
  here, its ticks. With several workers each has its own, and a scrape reads the one worker
  that answered it: the request figures are that worker's share, and the loop's histograms are
  filled only in the worker that holds the control lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from aifactory.services.metrics import FacilityFigures, ScrapeAccess, read_figures
from aifactory.services.session import Database

CONTENT_TYPE = CONTENT_TYPE_LATEST
REQUEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOP_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ProcessMetrics:
    """This process's histograms and counters, in a registry of their own (one per facility
    app, so two apps in one process, as in the tests, never share or clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aifactory_http_requests",
            "API and portal requests answered by this process, by route template",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aifactory_http_request_duration_seconds",
            "Time to answer a request in this process, by route template",
            ["method", "route"],
            buckets=REQUEST_BUCKETS_S,
            registry=self.registry,
        )
        self.ticks = Histogram(
            "aifactory_control_loop_tick_seconds",
            "One round of the control loop that holds the lease, in this process",
            buckets=LOOP_BUCKETS_S,
            registry=self.registry,
        )
        self.admissions = Histogram(
            "aifactory_admission_round_seconds",
            "Reading the snapshot, judging the waiting jobs, committing admissions (this process)",
            buckets=LOOP_BUCKETS_S,
            registry=self.registry,
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def loop_timed(self, phase: str, seconds: float) -> None:
        """The control loop's seam (`ControlLoop(timed=…)`): "tick" or "admission"."""
        (self.ticks if phase == "tick" else self.admissions).observe(seconds)


def scrape(
    db: Database,
    now: float,
    process: ProcessMetrics,
    access: ScrapeAccess,
    *,
    client: str | None,
    bearer: str | None,
) -> bytes:
    """The exposition for one scrape, once `access` lets the scraper in; one read session."""
    access.check(client=client, bearer=bearer)
    with db.read() as session:
        figures = read_figures(session, now)
    return generate_latest(_Scrape(figures, process))


class _Scrape(Collector):
    def __init__(self, figures: FacilityFigures, process: ProcessMetrics) -> None:
        self.figures = figures
        self.process = process

    def collect(self) -> Iterable[Metric]:
        yield from facility_families(self.figures)
        yield from self.process.registry.collect()


def facility_families(f: FacilityFigures) -> Iterator[Metric]:
    """The facility's metrics from its figures (names, types and labels: docs/metrics.md)."""
    yield from _job_families(f)
    gpus = GaugeMetricFamily(
        "aifactory_gpus", "GPUs by node, model and status", labels=["node", "gpu_model", "status"]
    )
    for g in f.gpus:
        for status, n in (("busy", g.busy), ("free", g.free), ("unschedulable", g.unschedulable)):
            gpus.add_metric([g.node, g.gpu_model, status], n)
    yield gpus
    yield from _topology_families(f)
    yield GaugeMetricFamily(
        "aifactory_admission_paused", "1 while operators hold admission", value=f.admission_paused
    )
    ledger = GaugeMetricFamily(
        "aifactory_ledger_gpu_hours",
        "GPU-hours on the allocations' books, by programme and kind",
        labels=["programme", "kind"],
    )
    for (programme, kind), hours in sorted(f.ledger_gpu_hours.items()):
        ledger.add_metric([programme, kind], hours)
    yield ledger
    energy = CounterMetricFamily(
        "aifactory_energy_kwh", "Energy metered for jobs, by GPU model", labels=["gpu_model"]
    )
    for model, kwh in sorted(f.energy_kwh.items()):
        energy.add_metric([model], kwh)
    yield energy
    tokens = CounterMetricFamily(
        "aifactory_inference_tokens",
        "Tokens (prompt and completion) through the inference gateway, by project",
        labels=["project"],
    )
    for project, n in sorted(f.inference_tokens.items()):
        tokens.add_metric([project], n)
    yield tokens


def _topology_families(f: FacilityFigures) -> Iterator[Metric]:
    """How well gangs sit in the network, and how fragmented its blocks' idle nodes are."""
    yield GaugeMetricFamily(
        "aifactory_gangs_running", "Admitted or running jobs over several nodes", value=f.gangs
    )
    yield GaugeMetricFamily(
        "aifactory_gangs_running_across_blocks",
        "Of them, those whose nodes span several network blocks",
        value=f.gangs_across_blocks,
    )
    idle = GaugeMetricFamily(
        "aifactory_block_idle_nodes",
        "Schedulable nodes no job is on, by network block",
        labels=["block"],
    )
    for block, n in sorted(f.block_idle_nodes.items()):
        idle.add_metric([block], n)
    yield idle


def _job_families(f: FacilityFigures) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "aifactory_jobs",
        "Jobs by state, project and the project's programme",
        labels=["state", "project", "programme"],
    )
    for labels, n in sorted(f.jobs.items()):
        jobs.add_metric(list(labels), n)
    yield jobs
    yield GaugeMetricFamily(
        "aifactory_queue_jobs", "Jobs waiting (pending or held)", value=f.waiting_jobs
    )
    yield GaugeMetricFamily(
        "aifactory_queue_gpus", "GPUs the waiting jobs ask for", value=f.waiting_gpus
    )
    yield GaugeMetricFamily(
        "aifactory_queue_oldest_wait_seconds",
        "How long the longest-waiting job has waited since submission",
        value=f.oldest_wait_s,
    )
    waits = HistogramMetricFamily(
        "aifactory_job_wait_seconds",
        "From submission to the latest admission, over every job admitted",
        buckets=[(_bound(b), n) for b, n in f.wait_buckets] + [("+Inf", f.wait_count)],
        sum_value=f.wait_sum_s,
    )
    yield waits


def _bound(seconds: float) -> str:
    return str(float(seconds))
