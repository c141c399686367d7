"""`/metrics` scraped from a live facility and read with Prometheus' own text parser."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from aifactory.client.client import Client
from aifactory.services.metrics import ScrapeAccess
from aifactory.store.models import Node
from tests.api.helpers import assert_error, bearer
from tests.conftest import LiveServer

DOCS = Path(__file__).parents[2] / "docs" / "metrics.md"
DASHBOARD = DOCS.with_name("grafana-dashboard.json")
TOKEN = "a-long-scrape-token-0123"


def scraped(live_server: LiveServer, headers: dict[str, str] | None = None) -> dict[str, Metric]:
    response = httpx.get(f"{live_server.url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def documented() -> set[str]:
    """The metrics docs/metrics.md lists, by the family names the parser gives (no `_total`)."""
    names = re.findall(r"^\| `(aifactory_\w+)` \|", DOCS.read_text(encoding="utf-8"), re.M)
    return {name.removesuffix("_total") for name in names}


def test_a_scrape_counts_what_the_api_reports_and_lists_what_the_docs_list(
    live_server: LiveServer, admin: Client
) -> None:
    jobs = [admin.submit(["sleep", "1"], gpus=g)["id"] for g in (1, 2, 0)]
    admin.cancel(jobs[0])
    admin.job(jobs[1])

    families = scraped(live_server)  # from loopback, nothing configured: let in

    by_state: dict[str, float] = {}
    for sample in families["aifactory_jobs"].samples:
        assert sample.labels["project"] == "default"
        by_state[sample.labels["state"]] = by_state.get(sample.labels["state"], 0) + sample.value
    assert by_state == admin.facility()["jobs_by_state"] == {"PENDING": 2, "CANCELLED": 1}
    assert families["aifactory_queue_jobs"].samples[0].value == 2
    assert families["aifactory_queue_gpus"].samples[0].value == 2
    gpus = {s.labels["status"]: s.value for s in families["aifactory_gpus"].samples}
    assert gpus == {"busy": 0, "free": 8, "unschedulable": 0}
    assert families["aifactory_gangs_running"].samples[0].value == 0
    assert families["aifactory_gangs_running_across_blocks"].samples[0].value == 0
    assert families["aifactory_block_idle_nodes"].samples == []  # no topology declared
    routes = {s.labels["route"] for s in families["aifactory_http_requests"].samples}
    assert "/api/v1/jobs/{job_id}" in routes
    assert not any(str(jobs[1]) in route for route in routes), routes  # a template, not a path
    assert {n for n in families if not n.endswith("_created")} == documented()
    charted = re.findall(r"aifactory_\w+", DASHBOARD.read_text(encoding="utf-8"))
    assert {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in charted} <= documented()


def test_a_scrape_counts_each_blocks_idle_nodes(live_server: LiveServer) -> None:
    with live_server.db.session() as session:
        session.get_one(Node, "node-1").block = "leaf0"

    families = scraped(live_server)

    idle = {s.labels["block"]: s.value for s in families["aifactory_block_idle_nodes"].samples}
    assert idle == {"leaf0": 1}


def test_a_scrape_needs_the_token_or_the_network_when_configured(
    live_server: LiveServer,
) -> None:
    url = f"{live_server.url}/metrics"
    live_server.state.metrics_access = ScrapeAccess(TOKEN)
    assert_error(httpx.get(url), 401)
    assert_error(httpx.get(url, headers=bearer(TOKEN + "x")), 401)
    assert "aifactory_jobs" in scraped(live_server, bearer(TOKEN))

    live_server.state.metrics_access = ScrapeAccess(networks=("10.0.0.0/8",))
    assert_error(httpx.get(url), 403, reason="may not scrape")
    assert "/metrics" not in httpx.get(f"{live_server.url}/api/v1/openapi.json").json()["paths"]
