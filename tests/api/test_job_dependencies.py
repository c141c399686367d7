"""A job may wait for earlier jobs (`after_ok`, `after_any`, `after_not_ok`); a job its
submitter may not see is answered exactly as one that does not exist. Through the real API,
on SQLite and PostgreSQL; the holding and releasing is the control loop's
(tests/control/test_dependencies.py)."""

from __future__ import annotations

import httpx

from tests.api.helpers import Tenants


def submit(api: httpx.Client, tenants: Tenants, who: str, **body: object) -> httpx.Response:
    return api.post("/jobs", json={"command": ["true"], **body}, headers=tenants.headers(who))


def test_dependencies_are_kept_and_others_jobs_are_not_found(
    api: httpx.Client, tenants: Tenants
) -> None:
    theirs = submit(api, tenants, "bob", project="proj-b").json()["id"]
    mine = submit(api, tenants, "alice", project="proj-a").json()["id"]

    waits = submit(api, tenants, "alice", project="proj-a", after_ok=[mine], after_any=[mine])
    assert waits.status_code == 201, waits.text
    body = waits.json()
    assert (body["after_ok"], body["after_any"], body["after_not_ok"]) == ([mine], [mine], [])
    assert api.get(f"/jobs/{body['id']}", headers=tenants.headers("alice")).json()["after_ok"] == [
        mine
    ]

    foreign = submit(api, tenants, "alice", project="proj-a", after_not_ok=[theirs])
    missing = submit(api, tenants, "alice", project="proj-a", after_not_ok=[theirs + 1000])
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json()["errors"] == [{"field": "after_not_ok", "reason": f"no job {theirs}"}]
    assert missing.text.replace(str(theirs + 1000), str(theirs)) == foreign.text
    assert submit(api, tenants, "alice", project="proj-a", after_ok=[0]).status_code == 422
