"""Queue control over HTTP (SQLite and PostgreSQL, no control loop: jobs stay where a test puts
them): hold, release and update a waiting job, and cancel many in one call, with who may.

proj-a: owen (owner), alice (member), vera (viewer); proj-b: bob (member); olga is an operator.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import Tenants, assert_error
from tests.conftest import LiveServer


def submit(tenants: Tenants, who: str, project: str = "proj-a", **spec: Any) -> int:
    job: dict[str, Any] = tenants.as_(who).submit(["true"], project=project, **spec)
    return int(job["id"])


def move(live_server: LiveServer, job_id: int, *states: JobState, reason: str = "test") -> None:
    """Walk a job through `states` as the control loop would (none runs in these tests)."""
    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        for state in states:
            switch_job_state(session, job, state, now=time.time(), actor="test", reason=reason)


def post(
    api: httpx.Client, tenants: Tenants, who: str, path: str, body: Any = None
) -> httpx.Response:
    return api.post(path, json=body, headers=tenants.headers(who))


def patch(api: httpx.Client, tenants: Tenants, who: str, job_id: int, body: Any) -> httpx.Response:
    return api.patch(f"/jobs/{job_id}", json=body, headers=tenants.headers(who))


# ---- hold and release -------------------------------------------------------------------------
def test_a_member_holds_and_releases_a_waiting_job_and_both_are_audited(
    tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = submit(tenants, "owen")
    alice = tenants.as_("alice")

    held = alice.hold(job_id, "waiting for the tokenizer")
    assert (held["state"], held["state_reason"]) == (
        "HELD",
        "held by alice: waiting for the tokenizer",
    )
    woken = len(live_server.submissions)
    released = alice.release(job_id)
    assert (released["state"], released["state_reason"]) == ("PENDING", "released by alice")
    assert len(live_server.submissions) > woken, "the control loop looks at the queue now"
    assert alice.hold(job_id)["state_reason"] == "held by alice"  # a reason is optional

    events = tenants.as_("owen").audit(object=f"job:{job_id}")
    assert [
        (e["actor"], e["action"], e["detail"]) for e in events if e["action"] != "job.submit"
    ] == [
        ("alice", "job.hold", {"reason": "waiting for the tokenizer"}),
        ("alice", "job.release", {"hold": "held by alice: waiting for the tokenizer"}),
        ("alice", "job.hold", {"reason": None}),
    ]


def test_a_viewer_may_not_and_another_project_learns_nothing(
    api: httpx.Client, tenants: Tenants
) -> None:
    job_id = submit(tenants, "alice")
    for path in ("hold", "release"):
        refused = post(api, tenants, "vera", f"/jobs/{job_id}/{path}")
        assert_error(refused, 403, reason="only admin, operator, owner or member may cancel")
        theirs = post(api, tenants, "bob", f"/jobs/{job_id}/{path}")
        missing = post(api, tenants, "bob", f"/jobs/999999/{path}")
        assert_error(theirs, 404, "job_id")
        assert theirs.text.replace(str(job_id), "N") == missing.text.replace("999999", "N")
    assert tenants.admin.job(job_id)["state"] == "PENDING"
    assert tenants.admin.audit(action="job.hold") == []


def test_an_operators_hold_is_released_by_an_operator_only(
    api: httpx.Client, tenants: Tenants
) -> None:
    job_id = submit(tenants, "alice")
    tenants.as_("olga").hold(job_id, "it fills the scratch file system")

    refused = post(api, tenants, "alice", f"/jobs/{job_id}/release")

    assert_error(refused, 403, "job_id", reason="held by operator olga: only an admin or operator")
    assert tenants.admin.job(job_id)["state"] == "HELD"
    assert tenants.as_("olga").release(job_id)["state"] == "PENDING"
    tenants.as_("alice").hold(job_id)
    assert tenants.admin.release(job_id)["state"] == "PENDING"  # anyone's hold is an admin's


@pytest.mark.parametrize(
    ("hold", "says"),
    [
        ("no budget: allocation a-1 has 0.0 GPU-h left, job needs up to 1.0", "allocations adjust"),
        ("data: no valid grant of corpus@1 to proj-a", "datasets grant"),
    ],
)
def test_releasing_a_hold_for_budget_or_data_says_what_releases_it(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer, hold: str, says: str
) -> None:
    job_id = submit(tenants, "alice")
    move(live_server, job_id, JobState.HELD, reason=hold)

    for who in ("alice", "olga"):
        refused = post(api, tenants, who, f"/jobs/{job_id}/release")
        body = assert_error(refused, 409, "job_id", reason=says)
        assert hold in body["message"]
        assert "the control loop releases it" in body["message"]
    assert tenants.admin.job(job_id)["state_reason"] == hold


def test_only_a_pending_job_is_held_and_only_a_held_one_released(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    running = submit(tenants, "alice")
    move(live_server, running, JobState.ADMITTED, JobState.RUNNING)
    waiting = submit(tenants, "alice")
    tenants.as_("alice").hold(waiting)
    cases = [
        (f"/jobs/{running}/hold", f"job {running} is RUNNING"),
        (f"/jobs/{running}/release", f"job {running} is RUNNING"),
        (f"/jobs/{waiting}/hold", "already held (held by alice)"),
        ("/jobs/999999/hold", "job 999999 not found"),
    ]
    for path, says in cases:
        response = post(api, tenants, "alice", path)
        assert_error(response, 404 if "999999" in path else 409, "job_id", reason=says)


@pytest.mark.parametrize(
    "body", [{"reason": ""}, {"reason": "x" * 501}, {"reason": 5}, {"why": "x"}, [1]]
)
def test_a_bad_hold_body_is_a_422_naming_the_field(
    api: httpx.Client, tenants: Tenants, body: object
) -> None:
    job_id = submit(tenants, "alice")
    assert_error(post(api, tenants, "alice", f"/jobs/{job_id}/hold", body), 422)
    assert tenants.admin.job(job_id)["state"] == "PENDING"


# ---- update -----------------------------------------------------------------------------------
def test_a_member_updates_a_waiting_jobs_limits_within_their_rights(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = submit(tenants, "alice", time_limit_s=3600)
    alice = tenants.as_("alice")
    woken = len(live_server.submissions)

    changed = alice.update(job_id, time_limit_s=600, priority=-10, name="shorter")
    assert (changed["time_limit_s"], changed["priority"], changed["name"]) == (600, -10, "shorter")
    assert len(live_server.submissions) > woken, "the queue is ordered anew"
    assert alice.update(job_id, time_limit_s=30 * 86400)["time_limit_s"] == 30 * 86400  # raised
    assert alice.update(job_id, priority=0)["priority"] == 0  # back up to 0 is theirs too

    beyond = patch(api, tenants, "alice", job_id, {"time_limit_s": 30 * 86400 + 1})
    assert_error(beyond, 422, "time_limit_s")
    above = patch(api, tenants, "alice", job_id, {"priority": 5})
    assert_error(above, 403, "priority", reason="only admin or operator may raise")
    assert tenants.as_("olga").update(job_id, priority=500)["priority"] == 500
    assert_error(patch(api, tenants, "vera", job_id, {"name": "x"}), 403)
    assert_error(patch(api, tenants, "bob", job_id, {"name": "x"}), 404, "job_id")

    events = tenants.as_("owen").audit(action="job.update")
    assert [(e["actor"], e["detail"]) for e in events] == [
        (
            "alice",
            {
                "from": {"name": "job", "time_limit_s": 3600, "priority": 0},
                "to": {"name": "shorter", "time_limit_s": 600, "priority": -10},
            },
        ),
        ("alice", {"from": {"time_limit_s": 600}, "to": {"time_limit_s": 30 * 86400}}),
        ("alice", {"from": {"priority": -10}, "to": {"priority": 0}}),
        ("olga", {"from": {"priority": 0}, "to": {"priority": 500}}),
    ]


def test_a_held_job_is_updated_a_running_one_is_a_409(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    held = submit(tenants, "alice")
    tenants.as_("alice").hold(held)
    assert tenants.as_("alice").update(held, time_limit_s=120)["time_limit_s"] == 120
    running = submit(tenants, "alice")
    move(live_server, running, JobState.ADMITTED, JobState.RUNNING)
    refused = patch(api, tenants, "alice", running, {"time_limit_s": 120})
    assert_error(refused, 409, "job_id", reason=f"job {running} is RUNNING")
    assert_error(patch(api, tenants, "alice", 999_999, {"name": "x"}), 404, "job_id")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"time_limit_s": "1h"}, "time_limit_s"),
        ({"priority": 1001}, "priority"),
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"time_limit": 60}, "time_limit"),
    ],
)
def test_a_bad_update_is_a_422_naming_the_field(
    api: httpx.Client, tenants: Tenants, body: object, field: str
) -> None:
    job_id = submit(tenants, "alice")
    assert_error(patch(api, tenants, "alice", job_id, body), 422, field)


def test_an_empty_update_changes_nothing(api: httpx.Client, tenants: Tenants) -> None:
    job_id = submit(tenants, "alice")
    same = patch(api, tenants, "alice", job_id, {})
    assert same.status_code == 200, same.text
    assert same.json()["time_limit_s"] == 3600
    assert tenants.admin.audit(action="job.update") == []


# ---- many cancelled at once -------------------------------------------------------------------
def outcomes(response: httpx.Response) -> list[tuple[int, str]]:
    assert response.status_code == 200, response.text
    return [(r["job_id"], r["outcome"]) for r in response.json()]


def test_cancel_by_ids_answers_each_job_alike_for_missing_and_unseen(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    waiting = submit(tenants, "alice")
    running = submit(tenants, "owen")
    move(live_server, running, JobState.ADMITTED, JobState.RUNNING)
    ended = submit(tenants, "alice")
    tenants.as_("alice").cancel(ended)
    theirs = submit(tenants, "bob", "proj-b")
    ids = [waiting, running, ended, theirs, 999_999]

    answered = post(api, tenants, "alice", "/jobs/cancel", {"ids": ids})

    assert outcomes(answered) == [
        (waiting, "cancelled"),
        (running, "stopping"),
        (ended, "already ended"),
        (theirs, "not found"),
        (999_999, "not found"),
    ]
    results = answered.json()
    assert results[3]["job"] is None
    assert results[3]["message"] == f"job {theirs} not found"  # as for a job that never was
    assert results[0]["job"]["state"] == "CANCELLED"
    assert results[1]["job"]["cancel_requested"] is True
    assert tenants.admin.job(theirs)["state"] == "PENDING"
    cancelled = tenants.as_("owen").audit(action="job.cancel")
    assert sorted(e["object"] for e in cancelled) == sorted(
        f"job:{i}" for i in (waiting, running, ended)
    )


def test_a_viewer_is_refused_job_by_job_and_matches_nothing_by_filter(
    api: httpx.Client, tenants: Tenants
) -> None:
    job_id = submit(tenants, "alice")
    by_id = post(api, tenants, "vera", "/jobs/cancel", {"ids": [job_id]})
    assert outcomes(by_id) == [(job_id, "refused")]
    assert "only admin, operator, owner or member may" in by_id.json()[0]["message"]
    assert outcomes(post(api, tenants, "vera", "/jobs/cancel", {"states": ["PENDING"]})) == []
    in_project = post(api, tenants, "vera", "/jobs/cancel", {"project": "proj-a"})
    assert_error(in_project, 403)
    assert tenants.admin.job(job_id)["state"] == "PENDING"


def test_cancel_by_filters_takes_every_job_that_matches_all_of_them(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    sweep = [submit(tenants, "alice", name=f"sweep-{i}") for i in range(3)]
    other = submit(tenants, "alice", name="train")
    owens = submit(tenants, "owen", name="sweep-owen")
    held = submit(tenants, "alice", name="sweep-held")
    tenants.as_("alice").hold(held)
    running = submit(tenants, "alice", name="sweep-run")
    move(live_server, running, JobState.ADMITTED, JobState.RUNNING)
    bobs = submit(tenants, "bob", "proj-b", name="sweep-bob")
    filters = {"name": "SWEEP", "mine": True, "states": ["PENDING", "HELD"]}

    dry = post(api, tenants, "alice", "/jobs/cancel", {**filters, "dry_run": True})
    assert outcomes(dry) == [(i, "cancelled") for i in (*sweep, held)]
    assert tenants.admin.job(sweep[0])["state"] == "PENDING"  # a dry run changes nothing

    done = post(api, tenants, "alice", "/jobs/cancel", filters)
    assert outcomes(done) == outcomes(dry)
    states = {i: tenants.admin.job(i)["state"] for i in (other, owens, running, bobs)}
    assert states == {other: "PENDING", owens: "PENDING", running: "RUNNING", bobs: "PENDING"}
    assert outcomes(post(api, tenants, "alice", "/jobs/cancel", filters)) == []
    everything = post(api, tenants, "owen", "/jobs/cancel", {"project": "proj-a"})
    assert outcomes(everything) == [
        (other, "cancelled"),
        (owens, "cancelled"),
        (running, "stopping"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ids"),
        ({"ids": [], "mine": False}, "ids"),
        ({"ids": [1], "mine": True}, "ids"),
        ({"states": ["SUCCEEDED"]}, "states"),
        ({"states": ["LOST"]}, "states.0"),
        ({"ids": [0]}, "ids.0"),
        ({"ids": list(range(1, 1002))}, "ids"),
        ({"name": ""}, "name"),
        ({"project": "no such name!"}, "project"),
    ],
)
def test_a_bad_bulk_cancel_is_a_422_naming_the_field(
    api: httpx.Client, tenants: Tenants, body: object, field: str
) -> None:
    assert_error(post(api, tenants, "alice", "/jobs/cancel", body), 422, field)


def test_cancel_in_a_project_one_cannot_see_is_a_404(api: httpx.Client, tenants: Tenants) -> None:
    submit(tenants, "bob", "proj-b")
    refused = post(api, tenants, "alice", "/jobs/cancel", {"project": "proj-b"})
    assert_error(refused, 404, "project")
