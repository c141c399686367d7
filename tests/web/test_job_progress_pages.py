"""The training progress on a job's page: the latest figures and the loss curve, from the
progress file the facility keeps in the job's home, polled while the job runs."""

from __future__ import annotations

import json
import time

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.test_jobs_pages import Pages, run_job, submit


def test_a_training_jobs_page_shows_its_loss_curve_and_latest_figures(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = submit(tenants, "alice", "proj-a")
    run_job(live_server, job_id)
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/jobs/{job_id}")
    assert "Training progress" not in page.text  # nothing reported yet
    assert f'hx-get="/jobs/{job_id}/progress"' in page.text  # but it may come
    assert alice.get(f"/jobs/{job_id}/progress").text.strip() == ""

    assert live_server.state.jobs_dir is not None
    home = live_server.state.jobs_dir / str(job_id) / "work"
    home.mkdir(parents=True)
    now = time.time()
    records = [
        {"at": now, "attempt": 1, "event": "train", "step": 10, "loss": 4.5, "tokens_per_s": 9000},
        {"at": now + 1, "attempt": 1, "event": "eval", "step": 10, "eval_loss": 4.75,
         "eval_ppl": 115.58},
        {"at": now + 2, "attempt": 1, "event": "train", "step": 20, "loss": 3.25},
        {"at": now + 3, "attempt": 1, "event": "checkpoint", "step": 20},
    ]  # fmt: skip
    (home / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    fragment = alice.get(f"/jobs/{job_id}/progress")
    assert fragment.status_code == 200
    for shown in ["Training progress", "3.2500", "9 000", "4.7500", "115.58", "step 20"]:
        assert shown in fragment.text, shown
    assert '<svg class="chart chart-line"' in fragment.text
    assert "<title>train loss</title>" in fragment.text
    assert "<title>eval loss</title>" in fragment.text
    assert "Loss by step: latest train loss 3.2, eval loss 4.8" in fragment.text
    assert "Training progress" in alice.get(f"/jobs/{job_id}").text
    assert pages(tenants.tokens["bob"]).get(f"/jobs/{job_id}/progress").status_code == 404

    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        switch_job_state(session, job, JobState.SUCCEEDED, now=time.time(), actor="loop")
    assert alice.get(f"/jobs/{job_id}/progress").status_code == 286, "stop polling"
    page = alice.get(f"/jobs/{job_id}")
    assert "<title>train loss</title>" in page.text  # shown at once, no polling
    assert "hx-trigger" not in page.text
