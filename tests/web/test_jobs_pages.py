"""The jobs pages over HTTP: who sees which jobs, the filters, the submit form's checks (the
API's own, in the API's words), cancelling, and the live fragments a job page polls."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job, Node
from aifactory.web import job_views as views
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

Pages = Callable[[str], PortalSession]
GOOD_FORM = {
    "project": "proj-a",
    "name": "train-bert",
    "command": "python3 train.py --lr 0.1 'two words'",
    "gpus": "2",
    "nodes": "1",
    "cpus": "4",
    "memory_mb": "2048",
    "time_limit": "10m",
    "priority": "-5",
    "env": "SEED=42\nMODE=fast\n",
}


def submit(tenants: Tenants, who: str, project: str, name: str = "job") -> int:
    job: dict[str, Any] = tenants.as_(who).submit(["true"], project=project, name=name)
    return int(job["id"])


def job_links(page: httpx.Response) -> set[int]:
    return {int(i) for i in re.findall(r'<a href="/jobs/(\d+)">', page.text)}


def field_error(page: httpx.Response, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page.text)
    assert found, f"no error shown next to {field!r}"
    return found.group(1).replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")


def run_job(live_server: LiveServer, job_id: int) -> None:
    """Move a waiting job to RUNNING on node-1, as the control loop would."""
    now = time.time()
    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        placement = {"node-1": {"gpus": 1, "cpus": 1, "memory_mb": 1024, "gpu_ids": ["3"]}}
        switch_job_state(
            session, job, JobState.ADMITTED, now=now, actor="test", placement=placement
        )
        switch_job_state(session, job, JobState.RUNNING, now=now, actor="test", started_at=now)


def test_the_list_shows_only_jobs_of_projects_the_user_may_see(
    pages: Pages, tenants: Tenants
) -> None:
    mine = submit(tenants, "alice", "proj-a", "alices-job")
    theirs = submit(tenants, "bob", "proj-b", "bobs-job")
    alice = pages(tenants.tokens["alice"])
    listed = alice.get("/jobs")
    assert listed.status_code == 200
    assert job_links(listed) == {mine}
    assert "bobs-job" not in listed.text
    assert '<span class="state state-PENDING">PENDING</span>' in listed.text
    assert 'href="/jobs/new"' in listed.text  # a member may submit
    assert job_links(pages(tenants.tokens["bob"]).get("/jobs")) == {theirs}
    vera = pages(tenants.tokens["vera"]).get("/jobs")
    assert job_links(vera) == {mine}
    assert 'href="/jobs/new"' not in vera.text  # a viewer may not submit anywhere


def test_filters_narrow_the_list_by_state_project_name_and_submitter(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    train = submit(tenants, "alice", "proj-a", "train-large")
    evaluate = submit(tenants, "owen", "proj-a", "eval-small")
    other = submit(tenants, "bob", "proj-b", "train-other")
    tenants.as_("owen").cancel(evaluate)
    admin = pages(live_server.admin_token)
    assert job_links(admin.get("/jobs")) == {train, evaluate, other}
    assert job_links(admin.get("/jobs", name="TRAIN")) == {train, other}
    assert job_links(admin.get("/jobs", project="proj-a")) == {train, evaluate}
    assert job_links(admin.get("/jobs", state="CANCELLED")) == {evaluate}
    assert job_links(admin.get("/jobs", state="PENDING", project="proj-b")) == {other}
    assert job_links(admin.get("/jobs", name="%")) == set()  # a wildcard is a plain character
    alice = pages(tenants.tokens["alice"])
    assert job_links(alice.get("/jobs", mine="1")) == {train}
    assert alice.get("/jobs", project="proj-b").status_code == 404
    assert alice.get("/jobs", state="DONE").status_code == 422


def test_the_list_pages_on_to_older_jobs_newest_first(pages: Pages, tenants: Tenants) -> None:
    ids = [submit(tenants, "alice", "proj-a", f"job-{i}") for i in range(53)]
    alice = pages(tenants.tokens["alice"])
    first = alice.get("/jobs")
    shown = [int(i) for i in re.findall(r'<a href="/jobs/(\d+)">', first.text)]
    assert shown == sorted(ids, reverse=True)[:50]
    older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert older, "a link to older jobs"
    second = alice.http.get(older.group(1).replace("&amp;", "&"))
    assert job_links(second) == set(sorted(ids)[:3])
    assert 'rel="next"' not in second.text
    assert "Newest jobs" in second.text


def test_a_good_form_submits_the_job_and_opens_its_page(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    alice = pages(tenants.tokens["alice"])
    form = alice.get("/jobs/new")
    assert form.status_code == 200
    assert '<option value="proj-a"' in form.text
    assert "proj-b" not in form.text  # only projects alice may submit to
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text)
    assert key, "the form carries its own idempotency key"
    woken = len(live_server.submissions)
    sent = alice.post("/jobs", {**GOOD_FORM, "idempotency_key": key.group(1)})
    assert sent.status_code == 303, sent.text
    job_id = int(sent.headers["location"].removeprefix("/jobs/"))
    assert len(live_server.submissions) > woken, "the control loop is woken at once"
    job = tenants.as_("alice").job(job_id)
    assert job["command"] == ["python3", "train.py", "--lr", "0.1", "two words"]
    assert job["env"] == {"SEED": "42", "MODE": "fast"}
    assert (job["project"], job["user"], job["gpus"], job["cpus"]) == ("proj-a", "alice", 2, 4)
    assert (job["memory_mb"], job["time_limit_s"], job["priority"]) == (2048, 600, -5)
    again = alice.post("/jobs", {**GOOD_FORM, "idempotency_key": key.group(1)})
    assert again.headers["location"] == f"/jobs/{job_id}", "a double click is one job"
    shown = alice.get(f"/jobs/{job_id}")
    assert shown.status_code == 200
    assert "python3 train.py --lr 0.1 &#39;two words&#39;" in shown.text
    assert f'hx-get="/jobs/{job_id}/queue" hx-trigger="load, every 10s"' in shown.text
    queue = alice.get(f"/jobs/{job_id}/queue")
    assert queue.status_code == 200
    assert "Why it waits" in queue.text
    assert "Place in the queue" in queue.text


@pytest.mark.parametrize(
    ("change", "field", "body"),
    [
        ({"gpus": "-1"}, "gpus", {"command": ["true"], "gpus": -1}),
        ({"cpus": "0"}, "cpus", {"command": ["true"], "cpus": 0}),
        ({"gpus": "lots"}, "gpus", {"command": ["true"], "gpus": "lots"}),
        ({"command": ""}, "command", {}),
        ({"project": "nope"}, "project", {"command": ["true"], "project": "nope"}),
        ({"gpus": "9"}, "gpus", {"command": ["true"], "gpus": 9}),
        ({"env": "1BAD=x"}, "env", {"command": ["true"], "env": {"1BAD": "x"}}),
        ({"datasets": "Not A Name"}, "datasets", {"command": ["true"], "datasets": ["Not A Name"]}),
    ],
)
def test_the_form_refuses_bad_input_with_the_apis_message_and_creates_nothing(
    pages: Pages,
    tenants: Tenants,
    live_server: LiveServer,
    change: dict[str, str],
    field: str,
    body: dict[str, Any],
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/jobs/new")
    refused = alice.post("/jobs", {**GOOD_FORM, **change})
    assert refused.status_code == 422
    api = httpx.post(
        f"{live_server.url}/api/v1/jobs",
        json={"project": "proj-a", **body},
        headers=tenants.headers("alice"),
    )
    assert api.status_code in (404, 422), api.text
    reasons = [e["reason"] for e in api.json()["errors"]]
    assert field_error(refused, field) in reasons
    assert f'id="{field}" name="{field}"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert 'value="train-bert"' in refused.text, "what the user typed is kept"
    assert tenants.as_("alice").jobs() == []


def test_a_priority_above_0_is_refused_next_to_its_field_as_the_api_refuses_it(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/jobs/new")
    refused = alice.post("/jobs", {**GOOD_FORM, "priority": "5"})
    assert refused.status_code == 422
    api = httpx.post(
        f"{live_server.url}/api/v1/jobs",
        json={"command": ["true"], "project": "proj-a", "priority": 5},
        headers=tenants.headers("alice"),
    )
    assert api.status_code == 403, api.text
    said = field_error(refused, "priority")
    assert said == api.json()["errors"][0]["reason"]
    assert said.startswith("only admin or operator may raise a job's priority above 0")
    assert 'id="priority" name="priority"' in refused.text
    assert 'value="5"' in refused.text, "what the user typed is kept"
    assert tenants.as_("alice").jobs() == []
    admin = pages(live_server.admin_token)
    admin.get("/jobs/new")
    assert admin.post("/jobs", {**GOOD_FORM, "priority": "5"}).status_code == 303


def test_the_time_limit_is_a_duration_with_its_unit_and_a_bare_number_is_refused(
    pages: Pages, tenants: Tenants
) -> None:
    """One rule with the CLI and job files (domain.durations): 30 could be seconds or minutes."""
    alice = pages(tenants.tokens["alice"])
    assert 'name="time_limit" type="text" value="1h"' in alice.get("/jobs/new").text
    bare = alice.post("/jobs", {**GOOD_FORM, "time_limit": "30"})
    assert bare.status_code == 422
    assert field_error(bare, "time_limit") == "30 is ambiguous: write 30s, 30m or 30h"
    assert 'value="30"' in bare.text, "what the user typed is kept"
    too_long = alice.post("/jobs", {**GOOD_FORM, "time_limit": "31d"})
    assert field_error(too_long, "time_limit").endswith("less than or equal to 2592000 (seconds)")
    assert tenants.as_("alice").jobs() == []
    sent = alice.post("/jobs", {**GOOD_FORM, "time_limit": "1:30:00"})
    assert sent.status_code == 303, sent.text
    job_id = int(sent.headers["location"].removeprefix("/jobs/"))
    assert tenants.as_("alice").job(job_id)["time_limit_s"] == 5400


def test_a_line_that_is_no_command_or_no_variable_is_refused_on_its_field(
    pages: Pages, tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/jobs/new")
    quotes = alice.post("/jobs", {**GOOD_FORM, "command": "echo 'unclosed"})
    assert quotes.status_code == 422
    assert "cannot be split into arguments" in field_error(quotes, "command")
    env = alice.post("/jobs", {**GOOD_FORM, "env": "SEED=1\nnot a pair"})
    assert field_error(env, "env") == "line 2: expected KEY=VALUE"
    assert tenants.as_("alice").jobs() == []


def test_a_viewer_gets_no_form_and_a_post_without_csrf_changes_nothing(
    pages: Pages, tenants: Tenants
) -> None:
    vera = pages(tenants.tokens["vera"])
    assert vera.get("/jobs/new").status_code == 403
    refused = vera.post("/jobs", GOOD_FORM)
    assert refused.status_code == 403
    assert "no project you may submit jobs to" in refused.text
    alice = pages(tenants.tokens["alice"])
    assert alice.http.post("/jobs", data=GOOD_FORM).status_code == 403
    assert tenants.as_("alice").jobs() == []


def test_another_projects_job_is_not_found_on_every_job_page(
    pages: Pages, tenants: Tenants
) -> None:
    job_id = submit(tenants, "alice", "proj-a")
    bob = pages(tenants.tokens["bob"])
    for path in ("", "/status", "/log", "/queue"):
        assert bob.get(f"/jobs/{job_id}{path}").status_code == 404, path
    assert bob.post(f"/jobs/{job_id}/cancel").status_code == 404
    assert bob.get("/jobs/999999").status_code == 404
    assert tenants.as_("alice").job(job_id)["state"] == "PENDING"


def test_a_member_cancels_a_job_and_a_viewer_may_not(pages: Pages, tenants: Tenants) -> None:
    job_id = submit(tenants, "alice", "proj-a")
    vera = pages(tenants.tokens["vera"])
    seen = vera.get(f"/jobs/{job_id}")
    assert seen.status_code == 200
    assert "/cancel" not in seen.text
    assert vera.post(f"/jobs/{job_id}/cancel").status_code == 403
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/jobs/{job_id}")
    assert f'data-confirm="Cancel job {job_id}?"' in page.text
    cancelled = alice.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/jobs/{job_id}"
    after = alice.get(f"/jobs/{job_id}")
    assert '<span class="state state-CANCELLED" id="job-state">' in after.text
    assert "cancelled by alice" in after.text  # the timeline
    assert "/cancel" not in after.text
    assert 'hx-trigger="every 2s"' not in after.text, "an ended job is not polled"


def test_a_running_jobs_page_polls_its_state_and_log_tail(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    job_id = submit(tenants, "alice", "proj-a")
    run_job(live_server, job_id)
    (live_server.logs_dir / f"{job_id}.log").write_text("step 1\nloss <0.5>\n")
    alice = pages(tenants.tokens["alice"])
    page = alice.get(f"/jobs/{job_id}")
    assert f'hx-get="/jobs/{job_id}/log" hx-trigger="load, every 2s"' in page.text
    assert f'hx-get="/jobs/{job_id}/status"' in page.text
    assert "<td>node-1</td>" in page.text  # placement
    assert "/queue" not in page.text  # it waits no more
    assert alice.get(f"/jobs/{job_id}/queue").status_code == 286
    log = alice.get(f"/jobs/{job_id}/log")
    assert log.status_code == 200
    assert '<pre class="log"' in log.text
    assert "step 1\nloss &lt;0.5&gt;\n</pre>" in log.text
    status = alice.get(f"/jobs/{job_id}/status")
    assert status.status_code == 200
    assert 'class="state state-RUNNING"' in status.text
    alice.post(f"/jobs/{job_id}/cancel")  # a running job: the loop will stop it
    with live_server.db.session() as session:
        job = session.get_one(Job, job_id)
        switch_job_state(session, job, JobState.CANCELLED, now=time.time(), actor="loop")
    assert alice.get(f"/jobs/{job_id}/status").status_code == 286, "stop polling"
    ended = alice.get(f"/jobs/{job_id}/log")
    assert ended.status_code == 286
    assert "loss &lt;0.5&gt;" in ended.text
    page = alice.get(f"/jobs/{job_id}")
    assert "loss &lt;0.5&gt;" in page.text  # shown at once, no polling
    assert "hx-trigger" not in page.text


@pytest.mark.parametrize(
    "argv",
    [
        ["python3", "-c", "print('hello from the portal')"],
        ["echo", "two words", 'a "quoted" one', "it's $HOME", ""],
        ["bash", "-c", "echo 'x' \\ y"],
    ],
)
def test_the_command_a_job_page_shows_splits_back_to_the_same_argv(argv: list[str]) -> None:
    shown = views.command_line(Job(command=argv))
    assert views.submission_input({"command": shown})["command"] == argv


def test_the_form_asks_for_no_gpu_on_a_facility_without_gpus(
    live_server: LiveServer, pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    assert 'name="gpus" type="number" value="1"' in alice.get("/jobs/new").text
    with live_server.db.session() as session:
        session.execute(update(Node).values(gpus=0, gpu_ids=[]))
    assert 'name="gpus" type="number" value="0"' in alice.get("/jobs/new").text
