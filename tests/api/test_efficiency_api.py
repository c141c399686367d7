"""`GET /jobs/{id}/efficiency` and `GET /projects/{name}/least-efficient` on the live API (and
the SDK's calls for them), over jobs settled as the facility settles them."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from aifactory.client import ApiError
from aifactory.domain.jobs import JobState
from tests.api.helpers import Tenants, assert_error, bearer
from tests.conftest import LiveServer
from tests.services.efficiency_jobs import GB, T0, Ran, a_finished_job

H = 3600.0
LITTLE = {
    "cpu_time_s": 1.3 * 2 * H,
    "peak_rss_mb": 1.2 * GB,
    "gpu_utilisation_pct": 12.0,
    "peak_gpu_memory_mb": 9000.0,
}


def finished(server: LiveServer, observed: dict[str, float], **kwargs: object) -> int:
    settings: dict[str, object] = {
        "user": "alice",
        "project": "proj-a",
        "attempts": [Ran(2 * H, observed)],
        "gpus": 1,
        "cpus": 8,
        "memory_mb": 16 * GB,
    }
    settings.update(kwargs)
    return a_finished_job(server.db, **settings)  # type: ignore[arg-type]


def test_a_job_s_report_shows_asked_against_used_and_hints(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = finished(live_server, LITTLE)
    got = api.get(f"/jobs/{job_id}/efficiency", headers=bearer(tenants.tokens["alice"]))
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["job_id"], body["project"], body["user"]) == (job_id, "proj-a", "alice")
    assert body["state"] == "SUCCEEDED"
    overall = body["overall"]
    assert (overall["cpus"], overall["memory_mb"], overall["gpus"]) == (8, 16 * GB, 1)
    assert overall["cpu_efficiency_pct"] == pytest.approx(100 * 1.3 / 8)
    assert overall["memory_efficiency_pct"] == pytest.approx(100 * 1.2 / 16)
    assert overall["gpu_utilisation_pct"] == 12.0
    assert overall["idle_gpu_s"] == pytest.approx(2 * H * 0.88)
    (attempt,) = body["attempts"]
    assert attempt["attempt"] == 1
    assert datetime.fromisoformat(attempt["started_at"]).timestamp() == T0
    assert attempt["peak_rss_mb"] == pytest.approx(1.2 * GB)
    assert body["hints"][0] == "asked 16 GB of memory, used at most 1.2 GB: ask for 2 GB"


def test_what_was_not_measured_is_null(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = finished(live_server, {}, end=JobState.FAILED)
    body = api.get(f"/jobs/{job_id}/efficiency", headers=bearer(tenants.tokens["vera"])).json()
    overall = body["overall"]
    for figure in ("cpu_time_s", "cpu_efficiency_pct", "peak_rss_mb", "gpu_utilisation_pct"):
        assert overall[figure] is None, figure
    assert overall["wall_s"] == 2 * H
    assert body["hints"] == []


def test_a_job_no_one_may_read_is_not_found(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = finished(live_server, LITTLE)
    refused = api.get(f"/jobs/{job_id}/efficiency", headers=bearer(tenants.tokens["bob"]))
    assert_error(refused, 404)
    assert_error(api.get(f"/jobs/{job_id}/efficiency"), 401)
    assert_error(api.get("/jobs/999999/efficiency", headers=bearer(tenants.tokens["alice"])), 404)


def test_the_least_efficient_jobs_of_a_project_come_worst_first(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    worst = finished(live_server, LITTLE)
    fine = finished(live_server, {**LITTLE, "gpu_utilisation_pct": 97.0, "cpu_time_s": 15 * H})
    alice = bearer(tenants.tokens["alice"])
    got = api.get("/projects/proj-a/least-efficient", headers=alice, params={"limit": 5})
    assert got.status_code == 200, got.text
    assert [r["job_id"] for r in got.json()] == [worst, fine]
    one = api.get("/projects/proj-a/least-efficient", headers=alice, params={"limit": 1})
    assert [r["job_id"] for r in one.json()] == [worst]
    assert_error(
        api.get("/projects/proj-a/least-efficient", headers=bearer(tenants.tokens["bob"])), 404
    )
    too_many = api.get("/projects/proj-a/least-efficient", headers=alice, params={"limit": 101})
    assert_error(too_many, 422, "limit")


def test_the_sdk_reads_both(tenants: Tenants, live_server: LiveServer) -> None:
    job_id = finished(live_server, LITTLE)
    alice = tenants.as_("alice")
    assert alice.efficiency(job_id)["overall"]["gpus"] == 1
    assert [r["job_id"] for r in alice.least_efficient("proj-a", limit=3)] == [job_id]
    with pytest.raises(ApiError) as refused:
        tenants.as_("bob").efficiency(job_id)
    assert refused.value.status == 404
