"""Jobs over HTTP: submit, list, show, cancel, logs, idempotency, and waking the control loop."""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import replace
from datetime import datetime

import httpx
import pytest

from aifactory.client.client import ApiError, Client
from aifactory.store.flags import set_open_network
from aifactory.store.nodes import upsert_node
from tests.api.helpers import OK_JOB, assert_error
from tests.conftest import TEST_NODE, LiveServer

FULL_SPEC = {
    "name": "train-llm",
    "command": ["python", "train.py", "--epochs", "3"],
    "env": {"SEED": "42", "HF_HOME": "/data/hf"},
    "working_dir": "/home/admin/work",
    "gpus": 2,
    "nodes": 1,
    "cpus": 16,
    "memory_mb": 64_000,
    "gpu_model": "h100",
    "time_limit_s": 7200,
    "preemptible": True,
    "priority": 5,
}


def test_submit_answers_201_pending_and_echoes_the_spec(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    response = api.post("/jobs", json=FULL_SPEC, headers=admin_headers)

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "PENDING"
    assert isinstance(job["id"], int)
    assert job["id"] >= 1
    for key, value in FULL_SPEC.items():
        assert job[key] == value, key
    assert job["project"] == "default"  # the admin's default project
    assert job["user"] == "admin"
    assert job["state_reason"] is None
    assert job["cancel_requested"] is False
    assert job["attempts"] == 0
    assert job["exit_code"] is None
    assert job["placement"] is None
    assert job["admitted_at"] is None
    assert job["started_at"] is None
    assert job["ended_at"] is None
    assert job["idempotency_key"] is None
    datetime.fromisoformat(job["submitted_at"])

    shown = api.get(f"/jobs/{job['id']}", headers=admin_headers).json()
    assert {k: shown[k] for k in job} == job


def test_submit_defaults_and_script_instead_of_command(admin: Client) -> None:
    job = admin.submit(["true"])

    assert job["name"] == "job"
    assert job["command"] == ["true"]
    assert (job["gpus"], job["nodes"], job["cpus"], job["memory_mb"]) == (0, 1, 1, 1024)
    assert job["time_limit_s"] == 3600
    assert job["preemptible"] is False
    assert job["priority"] == 0
    assert job["env"] == {}
    assert job["working_dir"] is None
    assert job["gpu_model"] is None

    script = "set -e\necho hello\nsleep 1\n"
    scripted = admin.submit(script=script)

    assert scripted["state"] == "PENDING"
    assert scripted["command"] == ["/bin/bash", "-c", script]
    assert admin.job(scripted["id"])["command"] == ["/bin/bash", "-c", script]


def test_list_filters_by_project_state_owner_limit_and_before_id(
    admin: Client, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    admin.create_organisation("lab", "startup")
    admin.create_project("other", "lab")
    dora_token = admin.create_user("dora")["token"]
    admin.add_member("default", "dora", "member")
    first = admin.submit(["a"])["id"]
    second = admin.submit(["b"])["id"]
    in_other = admin.submit(["c"], project="other")["id"]
    with Client(admin.url, dora_token) as dora:
        by_dora = dora.submit(["d"])["id"]
    admin.cancel(second)

    def ids(**params: int | str) -> list[int]:
        response = api.get("/jobs", params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()]

    assert ids() == [by_dora, in_other, second, first]  # newest first
    assert ids(project="other") == [in_other]
    assert ids(project="default") == [by_dora, second, first]
    assert ids(state="CANCELLED") == [second]
    assert ids(state="PENDING") == [by_dora, in_other, first]
    assert ids(state="RUNNING") == []
    assert ids(owner="dora") == [by_dora]
    assert ids(owner="admin", project="default") == [second, first]
    assert ids(limit=2) == [by_dora, in_other]
    assert ids(limit=2, before_id=in_other) == [second, first]
    assert ids(before_id=first) == []
    assert [j["id"] for j in admin.jobs(project="default", state="PENDING", owner="dora")] == [
        by_dora
    ]
    assert_error(api.get("/jobs", params={"owner": "ghost"}, headers=admin_headers), 404, "owner")


def test_show_includes_the_event_history(admin: Client) -> None:
    job_id = admin.submit(["true"])["id"]

    events = admin.job(job_id)["events"]
    assert len(events) == 1
    assert events[0]["from_state"] is None
    assert events[0]["to_state"] == "PENDING"
    assert events[0]["actor"] == "admin"
    datetime.fromisoformat(events[0]["at"])

    admin.cancel(job_id)
    shown = admin.job(job_id)
    assert shown["state"] == "CANCELLED"
    assert [(e["from_state"], e["to_state"]) for e in shown["events"]] == [
        (None, "PENDING"),
        ("PENDING", "CANCELLED"),
    ]
    assert shown["events"][1]["actor"] == "admin"
    assert "admin" in shown["events"][1]["reason"]


def test_cancel_pending_job_then_cancel_again_is_409_naming_the_job(
    api: httpx.Client, admin: Client, admin_headers: dict[str, str]
) -> None:
    job_id = admin.submit(["sleep", "100"])["id"]

    response = api.post(f"/jobs/{job_id}/cancel", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELLED"
    assert admin.job(job_id)["state"] == "CANCELLED"

    again = api.post(f"/jobs/{job_id}/cancel", headers=admin_headers)
    body = assert_error(again, 409, "job_id", reason="already ended")
    assert body["error"] == "conflict"
    assert str(job_id) in body["message"]
    assert admin.job(job_id)["state"] == "CANCELLED"


def test_unknown_job_is_404_for_show_cancel_and_logs(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/jobs/999"),
        ("POST", "/jobs/999/cancel"),
        ("GET", "/jobs/999/logs"),
    ]:
        body = assert_error(api.request(method, path, headers=admin_headers), 404, "job_id")
        assert "999" in body["message"]


def test_logs_offset_and_tail(live_server: LiveServer, admin: Client) -> None:
    job_id = admin.submit(["true"])["id"]
    content = b"line one\nline two\nline three\n"
    (live_server.logs_dir / f"{job_id}.log").write_bytes(content)

    whole = admin.logs(job_id)
    assert whole == {
        "text": content.decode(),
        "offset": len(content),
        "size": len(content),
        "complete": False,  # still PENDING: more may come
    }
    rest = admin.logs(job_id, offset=len(b"line one\n"))
    assert rest["text"] == "line two\nline three\n"
    assert rest["offset"] == len(content)
    at_end = admin.logs(job_id, offset=len(content))
    assert at_end["text"] == ""
    assert at_end["offset"] == len(content)

    assert admin.logs(job_id, tail=2)["text"] == "line two\nline three\n"
    assert admin.logs(job_id, tail=1)["offset"] == len(content)
    assert admin.logs(job_id, tail=0)["text"] == ""
    assert admin.logs(job_id, tail=100)["text"] == content.decode()

    # The log grows: reading on from the last offset returns only the new bytes.
    with open(live_server.logs_dir / f"{job_id}.log", "ab") as handle:
        handle.write(b"line four\n")
    grown = admin.logs(job_id, offset=whole["offset"])
    assert grown["text"] == "line four\n"
    assert grown["size"] == len(content) + len(b"line four\n")

    with pytest.raises(ApiError) as raised:
        admin.logs(job_id, offset=grown["size"] + 1)
    assert raised.value.status == 422
    assert [e["field"] for e in raised.value.errors] == ["offset"]


def test_logs_complete_only_once_the_job_ended_and_all_is_read(
    live_server: LiveServer, admin: Client
) -> None:
    job_id = admin.submit(["true"])["id"]
    log = live_server.logs_dir / f"{job_id}.log"
    # Bigger than one chunk (1 MiB), so one read cannot return it all.
    content = b"".join(b"%07d xxxxxxxxxxxxxxxxxxxxxxxx\n" % i for i in range(50_000))
    assert len(content) > 1024 * 1024
    log.write_bytes(content)

    assert admin.logs(job_id)["complete"] is False
    admin.cancel(job_id)

    first = admin.logs(job_id)
    assert first["complete"] is False  # ended, but not everything read
    assert 0 < first["offset"] < len(content)
    second = admin.logs(job_id, offset=first["offset"])
    assert second["complete"] is True
    assert second["offset"] == second["size"] == len(content)
    assert (first["text"] + second["text"]).encode() == content
    assert "".join(admin.follow_logs(job_id, poll_s=0.01)).encode() == content


def test_logs_without_a_file_and_with_bytes_that_are_not_utf8(
    live_server: LiveServer, admin: Client
) -> None:
    job_id = admin.submit(["true"])["id"]

    assert admin.logs(job_id) == {"text": "", "offset": 0, "size": 0, "complete": False}
    admin.cancel(job_id)
    assert admin.logs(job_id) == {"text": "", "offset": 0, "size": 0, "complete": True}

    other = admin.submit(["true"])["id"]
    (live_server.logs_dir / f"{other}.log").write_bytes(b"ok \xff\xfe done\n")
    chunk = admin.logs(other)
    assert chunk["text"].startswith("ok ")
    assert chunk["text"].endswith(" done\n")
    assert "\ufffd" in chunk["text"]
    assert chunk["size"] == 11


def test_idempotency_key_header_returns_the_same_job(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    headers = {**admin_headers, "Idempotency-Key": "run-2024-01"}

    first = api.post("/jobs", json=OK_JOB, headers=headers)
    second = api.post("/jobs", json={"command": ["different"]}, headers=headers)

    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["command"] == ["true"]  # the job made the first time
    assert first.json()["idempotency_key"] == "run-2024-01"
    assert [j["id"] for j in api.get("/jobs", headers=admin_headers).json()] == [first.json()["id"]]
    assert len(live_server.submissions) == 1


def test_idempotency_key_in_body_or_header_and_its_scope(
    api: httpx.Client, admin_headers: dict[str, str], admin: Client
) -> None:
    by_body = api.post("/jobs", json={**OK_JOB, "idempotency_key": "k-1"}, headers=admin_headers)
    by_header = api.post("/jobs", json=OK_JOB, headers={**admin_headers, "Idempotency-Key": "k-1"})
    by_sdk = admin.submit(["true"], idempotency_key="k-1")

    assert by_body.status_code == 201
    assert by_header.status_code == 200
    assert by_body.json()["id"] == by_header.json()["id"] == by_sdk["id"]
    assert len(admin.jobs()) == 1

    # Another key, another project, or no key at all: a new job each time.
    admin.create_organisation("lab", "sme")
    admin.create_project("other", "lab")
    b = admin.submit(["true"], idempotency_key="k-2")
    c = admin.submit(["true"], idempotency_key="k-1", project="other")
    d = admin.submit(["true"])
    e = admin.submit(["true"])
    assert len({by_sdk["id"], b["id"], c["id"], d["id"], e["id"]}) == 5
    assert len(admin.jobs()) == 5
    assert admin.submit(["true"], idempotency_key="k-1", project="other")["id"] == c["id"]


def test_concurrent_submissions_with_one_key_make_one_job(
    live_server: LiveServer, admin_headers: dict[str, str]
) -> None:
    headers = {**admin_headers, "Idempotency-Key": "race"}

    def submit(_: int) -> httpx.Response:
        return httpx.post(f"{live_server.url}/api/v1/jobs", json=OK_JOB, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(submit, range(8)))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = httpx.get(f"{live_server.url}/api/v1/jobs", headers=admin_headers).json()
    assert len(listed) == 1
    assert len(live_server.submissions) == 1


def test_control_loop_is_woken_only_by_a_real_submission(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    assert live_server.submissions == []

    api.post("/jobs", json={**OK_JOB, "gpus": 99}, headers=admin_headers)  # refused
    assert live_server.submissions == []

    created = api.post("/jobs", json={**OK_JOB, "idempotency_key": "x"}, headers=admin_headers)
    assert created.status_code == 201
    assert len(live_server.submissions) == 1

    api.post("/jobs", json={**OK_JOB, "idempotency_key": "x"}, headers=admin_headers)  # replay
    assert len(live_server.submissions) == 1


def test_a_gang_may_require_one_network_block_and_is_refused_if_none_is_that_large(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    with live_server.db.session() as session:
        set_open_network(session, True)  # a gang reaches its other nodes over the network
        for i, block in enumerate(["leaf-a", "leaf-a", "leaf-b"]):
            node = replace(TEST_NODE, id=f"gpu-{i}", block=block)
            upsert_node(session, node, executor="local", gpu_ids=["0"], now=time.time())
    gang = {"name": "allreduce", "command": ["true"], "gpus": 8, "nodes": 2, "network": "open"}
    gang["one_block"] = True

    response = api.post("/jobs", json=gang, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["one_block"] is True
    assert api.get(f"/jobs/{response.json()['id']}", headers=admin_headers).json()["one_block"]

    too_wide = api.post("/jobs", json={**gang, "nodes": 3}, headers=admin_headers)
    body = assert_error(too_wide, 422, "one_block")
    assert "the largest block has 2 nodes of this shape" in body["message"]
    spread = api.post("/jobs", json={**gang, "nodes": 3, "one_block": False}, headers=admin_headers)
    assert spread.status_code == 201, spread.text
