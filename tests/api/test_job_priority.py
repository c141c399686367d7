"""A job's priority over HTTP: tenants submit at 0 or below (fair share decides between
projects, not who asks for more); raising one is `job.prioritise`, which operators and admins
hold, at submission or on a waiting job (`PUT /jobs/ID/priority`, audited, through the SDK)."""

from __future__ import annotations

import time

import httpx
import pytest

from aifactory.client.client import ApiError
from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import OK_JOB, Tenants, assert_error
from tests.conftest import LiveServer

REFUSAL = "only admin or operator may raise a job's priority above 0"


def put_priority(
    api: httpx.Client, tenants: Tenants, who: str, job_id: int, body: object
) -> httpx.Response:
    return api.put(f"/jobs/{job_id}/priority", json=body, headers=tenants.headers(who))


def move(live_server: LiveServer, job_id: int, *states: JobState) -> None:
    """Walk a job through `states` as the control loop would (none runs in these tests)."""
    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        for state in states:
            switch_job_state(session, job, state, now=time.time(), actor="test")


def test_members_and_owners_may_only_lower_their_jobs_priority(
    api: httpx.Client, tenants: Tenants
) -> None:
    for who in ("alice", "owen"):
        for key in (None, "same-key"):  # a key seen before gives no way round the check
            body = {**OK_JOB, "project": "proj-a", "priority": 5, "idempotency_key": key}
            refused = api.post("/jobs", json=body, headers=tenants.headers(who))
            answer = assert_error(refused, 403, "priority", reason=REFUSAL)
            assert answer["error"] == "permission_denied"
            assert "(your roles here: " in answer["message"]
    assert tenants.admin.jobs(project="proj-a") == []

    alice = tenants.as_("alice")
    assert alice.submit(["true"], project="proj-a", priority=-1000)["priority"] == -1000
    assert alice.submit(["true"], project="proj-a", priority=0)["priority"] == 0
    assert tenants.admin.submit(["true"], project="proj-a", priority=1000)["priority"] == 1000


def test_an_operator_raises_a_waiting_job_and_it_is_audited(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    woken = len(live_server.submissions)

    raised = tenants.as_("olga").set_priority(job_id, 500)

    assert (raised["id"], raised["state"], raised["priority"]) == (job_id, "PENDING", 500)
    assert tenants.as_("alice").job(job_id)["priority"] == 500
    assert len(live_server.submissions) > woken, "the control loop orders the queue anew"
    move(live_server, job_id, JobState.HELD)
    assert tenants.admin.set_priority(job_id, -20)["priority"] == -20  # held is waiting too
    events = tenants.as_("owen").audit(action="job.prioritise")  # the project's own events
    assert [(e["actor"], e["object"], e["source"], e["detail"]) for e in events] == [
        ("olga", f"job:{job_id}", "127.0.0.1", {"from": 0, "to": 500}),
        ("admin", f"job:{job_id}", "127.0.0.1", {"from": 500, "to": -20}),
    ]


def test_only_operators_and_admins_change_a_priority_and_others_learn_nothing(
    api: httpx.Client, tenants: Tenants
) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    for who in ("alice", "owen", "vera", "carol"):
        lowered = put_priority(api, tenants, who, job_id, {"priority": -5})
        assert_error(lowered, 403, reason=REFUSAL)
    # Another project's member is told the same for a job of proj-a as for no job at all.
    theirs = put_priority(api, tenants, "bob", job_id, {"priority": 5}).json()
    assert theirs == put_priority(api, tenants, "bob", 999_999, {"priority": 5}).json()
    assert tenants.admin.job(job_id)["priority"] == 0
    assert tenants.admin.audit(action="job.prioritise") == []


@pytest.mark.parametrize(
    "body",
    [{"priority": 1001}, {"priority": -1001}, {"priority": "5"}, {"priority": 1.5}, {}],
)
def test_a_priority_outside_the_range_is_a_422_naming_it(
    api: httpx.Client, tenants: Tenants, body: object
) -> None:
    job_id = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    assert_error(put_priority(api, tenants, "olga", job_id, body), 422, "priority")
    assert tenants.admin.job(job_id)["priority"] == 0


def test_a_job_past_the_queue_or_missing_is_refused(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    alice = tenants.as_("alice")
    cancelled = alice.submit(["true"], project="proj-a")["id"]
    alice.cancel(cancelled)
    running = alice.submit(["true"], project="proj-a")["id"]
    move(live_server, running, JobState.ADMITTED, JobState.RUNNING)
    for job_id, state in ((cancelled, "CANCELLED"), (running, "RUNNING")):
        refused = put_priority(api, tenants, "olga", job_id, {"priority": 5})
        assert_error(refused, 409, "job_id", reason=f"job {job_id} is {state}")
    assert_error(put_priority(api, tenants, "olga", 999_999, {"priority": 5}), 404, "job_id")
    with pytest.raises(ApiError) as missing:
        tenants.as_("olga").set_priority(999_999, 5)
    assert missing.value.status == 404
