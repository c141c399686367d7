"""The Efficiency section of an ended job's page: asked against used, "not measured" where it
was not, and the hints; none on the page of a job still to run."""

from __future__ import annotations

from collections.abc import Callable

from aifactory.domain.jobs import JobState
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.services.efficiency_jobs import GB, Ran, a_finished_job
from tests.web.conftest import PortalSession
from tests.web.test_jobs_pages import submit

H = 3600.0


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


def test_an_ended_job_shows_what_it_used_of_what_it_asked(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    used = {"cpu_time_s": 2.6 * H, "peak_rss_mb": 1.2 * GB, "gpu_utilisation_pct": 12.0}
    job_id = finished(live_server, {**used, "peak_gpu_memory_mb": 9000.0})
    page = pages(tenants.tokens["alice"]).get(f"/jobs/{job_id}")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert '<h2 id="h-efficiency">Efficiency</h2>' in text
    assert "<td>8 CPUs for 2 h 0 min</td>" in text
    assert "<td>2 h 36 min of CPU time</td>" in text
    assert "<td>at most 1.2 GB</td>" in text
    assert "busy 12 % of the time, at most 8.8 GB of GPU memory" in text
    assert '<td class="num">7.5 %</td>' in text  # memory
    assert "<li>asked 16 GB of memory, used at most 1.2 GB: ask for 2 GB</li>" in text


def test_figures_not_measured_say_so_and_a_failed_job_gets_no_hint(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = finished(live_server, {}, end=JobState.FAILED)
    text = " ".join(pages(tenants.tokens["vera"]).get(f"/jobs/{job_id}").text.split())
    assert "Efficiency" in text
    assert text.count("not measured") >= 4  # CPU and memory: used and efficiency
    assert 'aria-label="Hints"' not in text


def test_a_job_still_to_run_has_no_efficiency_section(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    job_id = submit(tenants, "alice", "proj-a")
    assert "h-efficiency" not in pages(tenants.tokens["alice"]).get(f"/jobs/{job_id}").text
