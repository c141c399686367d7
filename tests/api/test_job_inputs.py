"""A job may read the own directories of earlier jobs of its project (`inputs`: a fine-tune,
its pretraining's checkpoints); another project's job is answered exactly as one that does not
exist. Through the real API, on SQLite and PostgreSQL; the read-only mount is the executor's
(tests/executors/test_local_sandbox.py)."""

from __future__ import annotations

import httpx

from tests.api.helpers import Tenants


def submit(api: httpx.Client, tenants: Tenants, who: str, **body: object) -> httpx.Response:
    return api.post("/jobs", json={"command": ["true"], **body}, headers=tenants.headers(who))


def test_a_job_reads_its_own_projects_jobs_and_of_others_learns_nothing(
    api: httpx.Client, tenants: Tenants
) -> None:
    theirs = submit(api, tenants, "bob", project="proj-b").json()["id"]
    mine = submit(api, tenants, "alice", project="proj-a").json()["id"]

    reads = submit(api, tenants, "alice", project="proj-a", inputs=[mine, mine])
    assert reads.status_code == 201, reads.text
    assert reads.json()["inputs"] == [mine]

    foreign = submit(api, tenants, "alice", project="proj-a", inputs=[theirs])
    missing = submit(api, tenants, "alice", project="proj-a", inputs=[theirs + 1000])
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json()["errors"] == [
        {"field": "inputs", "reason": f"no job {theirs} in project proj-a"}
    ]
    assert missing.text.replace(str(theirs + 1000), str(theirs)) == foreign.text
    assert submit(api, tenants, "alice", project="proj-a", inputs=[0]).status_code == 422
