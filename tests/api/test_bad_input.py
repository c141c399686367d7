"""Bad input never gets a 500: each refusal has the right status and names the field at fault."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aifactory.client.client import ApiError, Client
from tests.api.helpers import OK_JOB, assert_error, check_all
from tests.conftest import LiveServer

JSON = {"content-type": "application/json"}


def submit_cases(
    api: httpx.Client, headers: dict[str, str], cases: list[tuple[dict[str, Any], int, str]]
) -> Iterator[tuple[str, httpx.Response, int, object]]:
    for body, status, field in cases:
        yield repr(body), api.post("/jobs", json=body, headers=headers), status, field


def assert_no_jobs(api: httpx.Client, headers: dict[str, str]) -> None:
    listed = api.get("/jobs", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == []


def test_wrong_types_are_422_naming_the_field(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    cases = [
        ({**OK_JOB, "gpus": "four"}, 422, "gpus"),
        ({**OK_JOB, "gpus": "4"}, 422, "gpus"),  # strict: no quietly coerced strings
        ({**OK_JOB, "gpus": 1.5}, 422, "gpus"),
        ({**OK_JOB, "gpus": True}, 422, "gpus"),
        ({**OK_JOB, "gpus": None}, 422, "gpus"),
        ({**OK_JOB, "nodes": [1]}, 422, "nodes"),
        ({**OK_JOB, "cpus": {"n": 1}}, 422, "cpus"),
        ({**OK_JOB, "preemptible": "yes"}, 422, "preemptible"),
        ({"command": "python train.py"}, 422, "command"),
        ({"command": ["python", 3]}, 422, "command.1"),
        ({**OK_JOB, "env": {"A": 1}}, 422, "env.A"),
        ({**OK_JOB, "env": ["A=1"]}, 422, "env"),
        ({**OK_JOB, "name": 7}, 422, "name"),
        ({**OK_JOB, "project": 7}, 422, "project"),
        ({"script": ["echo", "hi"]}, 422, "script"),
    ]
    check_all(submit_cases(api, admin_headers, cases))
    assert_no_jobs(api, admin_headers)


def test_out_of_range_resources_are_422_naming_the_field(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    cases = [
        ({**OK_JOB, "gpus": -1}, 422, "gpus"),
        ({**OK_JOB, "cpus": 0}, 422, "cpus"),
        ({**OK_JOB, "cpus": -4}, 422, "cpus"),
        ({**OK_JOB, "memory_mb": -1}, 422, "memory_mb"),
        ({**OK_JOB, "nodes": 0}, 422, "nodes"),
        ({**OK_JOB, "nodes": -1}, 422, "nodes"),
        ({**OK_JOB, "time_limit_s": 0}, 422, "time_limit_s"),
        ({**OK_JOB, "gpus": 100_000}, 422, "gpus"),
        ({**OK_JOB, "gpus": 10**30}, 422, "gpus"),
        ({**OK_JOB, "memory_mb": 10**12}, 422, "memory_mb"),
        ({**OK_JOB, "nodes": 100_000}, 422, "nodes"),
        ({**OK_JOB, "time_limit_s": 30 * 86400 + 1}, 422, "time_limit_s"),
        ({**OK_JOB, "time_limit_s": 10**20}, 422, "time_limit_s"),
        ({**OK_JOB, "priority": 10**6}, 422, "priority"),
        ({**OK_JOB, "name": ""}, 422, "name"),
        ({**OK_JOB, "name": "n" * 129}, 422, "name"),
    ]
    check_all(submit_cases(api, admin_headers, cases))
    # The largest legal time limit (30 days) is accepted.
    accepted = api.post("/jobs", json={**OK_JOB, "time_limit_s": 30 * 86400}, headers=admin_headers)
    assert accepted.status_code == 201, accepted.text


def test_malformed_job_specs_are_422_naming_the_field(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"command": ["true"], "script": "true"}, 422, "body"),
        ({"name": "nothing to run"}, 422, "body"),
        ({"command": []}, 422, "command"),
        ({"script": ""}, 422, "script"),
        ({**OK_JOB, "env": {"1BAD": "x"}}, 422, "env"),
        ({**OK_JOB, "env": {"A-B": "x"}}, 422, "env"),
        ({**OK_JOB, "env": {"": "x"}}, 422, "env"),
        ({**OK_JOB, "working_dir": "relative/dir"}, 422, "working_dir"),
        ({**OK_JOB, "working_dir": ""}, 422, "working_dir"),
        ({**OK_JOB, "bogus": 1}, 422, "bogus"),
        ({**OK_JOB, "gpu": 1}, 422, "gpu"),
        ({**OK_JOB, "project": "no spaces allowed"}, 422, "project"),
    ]
    check_all(submit_cases(api, admin_headers, cases))
    both = api.post("/jobs", json={"command": ["true"], "script": "true"}, headers=admin_headers)
    reason = both.json()["errors"][0]["reason"]
    assert "command" in reason
    assert "script" in reason
    unknown = api.post("/jobs", json={**OK_JOB, "bogus": 1}, headers=admin_headers)
    assert unknown.json()["errors"] == [{"field": "bogus", "reason": "is not a known field"}]
    assert_no_jobs(api, admin_headers)


def test_jobs_that_can_never_fit_are_refused_at_once(
    api: httpx.Client, admin_headers: dict[str, str], admin: Client
) -> None:
    cases = [
        ({**OK_JOB, "gpus": 9}, 422, "gpus"),
        ({**OK_JOB, "cpus": 33}, 422, "cpus"),
        ({**OK_JOB, "memory_mb": 256_001}, 422, "memory_mb"),
        ({**OK_JOB, "gpus": 1, "gpu_model": "a100"}, 422, "gpu_model"),
        ({**OK_JOB, "nodes": 2}, 422, "nodes"),
        ({**OK_JOB, "gpus": 8, "nodes": 2}, 422, "nodes"),
    ]
    check_all(submit_cases(api, admin_headers, cases))
    gpus = api.post("/jobs", json={**OK_JOB, "gpus": 9}, headers=admin_headers).json()
    assert "8" in gpus["errors"][0]["reason"]  # says what the largest node has
    model = api.post(
        "/jobs", json={**OK_JOB, "gpus": 1, "gpu_model": "a100"}, headers=admin_headers
    )
    assert "h100" in model.json()["errors"][0]["reason"]  # says what is offered
    with pytest.raises(ApiError) as raised:
        admin.submit(["true"], gpus=9)
    assert raised.value.status == 422
    assert raised.value.code == "invalid_input"
    assert [e["field"] for e in raised.value.errors] == ["gpus"]
    assert_no_jobs(api, admin_headers)
    # A job that exactly fills the node fits.
    full = api.post(
        "/jobs",
        json={**OK_JOB, "gpus": 8, "cpus": 32, "memory_mb": 256_000, "gpu_model": "h100"},
        headers=admin_headers,
    )
    assert full.status_code == 201, full.text


def test_unknown_project_is_404_naming_project(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    response = api.post("/jobs", json={**OK_JOB, "project": "nowhere"}, headers=admin_headers)
    body = assert_error(response, 404, "project")
    assert "nowhere" in body["message"]
    assert_error(
        api.get("/jobs", params={"project": "nowhere"}, headers=admin_headers), 404, "project"
    )
    assert_no_jobs(api, admin_headers)


def test_bodies_that_are_not_a_json_object(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    headers = {**admin_headers, **JSON}
    invalid = api.post("/jobs", content=b'{"command": ["true"],', headers=headers)
    body = assert_error(invalid, 422, "body", reason="not valid JSON")
    assert body["error"] == "invalid_input"
    check_all(
        [
            ("missing body", api.post("/jobs", headers=admin_headers), 422, "body"),
            ("empty body", api.post("/jobs", content=b"", headers=headers), 422, "body"),
            ("array", api.post("/jobs", json=[OK_JOB], headers=admin_headers), 422, "body"),
            ("string", api.post("/jobs", json="true", headers=admin_headers), 422, "body"),
            ("null", api.post("/jobs", content=b"null", headers=headers), 422, "body"),
            ("NaN", api.post("/jobs", content=b'{"gpus": NaN}', headers=headers), 422, "gpus"),
            (
                "not JSON content type",
                api.post("/jobs", content=b"command=true", headers={**admin_headers}),
                422,
                "body",
            ),
        ]
    )
    assert_no_jobs(api, admin_headers)


def test_oversized_payloads_are_413_with_a_json_body(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    big = {"script": "#" * (65 * 1024)}
    declared = api.post("/jobs", json=big, headers=admin_headers)
    body = assert_error(declared, 413, "body")
    assert body["error"] == "payload_too_large"
    assert "65536" in body["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must count what arrives
        yield b'{"script": "'
        for _ in range(10):
            yield b"#" * 8192
        yield b'"}'

    streamed = httpx.post(
        f"{live_server.url}/api/v1/jobs", content=chunks(), headers={**admin_headers, **JSON}
    )
    assert "content-length" not in streamed.request.headers
    body = assert_error(streamed, 413, "body")
    assert body["error"] == "payload_too_large"
    assert_no_jobs(api, admin_headers)
    # Just under the limit is read and accepted.
    under = api.post("/jobs", json={"script": "#" * 60_000}, headers=admin_headers)
    assert under.status_code == 201, under.text


def test_unknown_api_routes_and_wrong_methods_answer_json(
    live_server: LiveServer, api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    for path in ["/nope", "/jobs/1/nope"]:
        body = assert_error(api.get(path, headers=admin_headers), 404, None)
        assert body["error"] == "not_found"
    outside = httpx.get(f"{live_server.url}/not-the-api")  # the portal's: a page, not JSON
    assert outside.status_code == 404
    assert outside.headers["content-type"].startswith("text/html")
    assert "Not found" in outside.text
    for method, path in [("DELETE", "/jobs"), ("PUT", "/jobs/1"), ("GET", "/jobs/1/cancel")]:
        response = api.request(method, path, headers=admin_headers)
        body = assert_error(response, 405, None)
        assert body["error"] == "method_not_allowed"
        assert "allow" in response.headers


def test_bad_path_and_query_parameters_name_the_parameter(
    api: httpx.Client, admin_headers: dict[str, str], admin: Client
) -> None:
    job_id = admin.submit(["true"])["id"]
    h = admin_headers

    def get(path: str, **params: int | str) -> httpx.Response:
        return api.get(path, params=params, headers=h)

    check_all(
        [
            ("job id not an int", get("/jobs/abc"), 422, "job_id"),
            ("job id float", get("/jobs/1.5"), 422, "job_id"),
            ("job id zero", get("/jobs/0"), 422, "job_id"),
            ("job id huge", get(f"/jobs/{2**63}"), 422, "job_id"),
            ("job id 2^31", get(f"/jobs/{2**31}"), 422, "job_id"),
            ("cancel id", api.post("/jobs/abc/cancel", headers=h), 422, "job_id"),
            ("cancel id huge", api.post(f"/jobs/{10**20}/cancel", headers=h), 422, "job_id"),
            ("logs id", get("/jobs/x/logs"), 422, "job_id"),
            ("limit 0", get("/jobs", limit=0), 422, "limit"),
            ("limit 5000", get("/jobs", limit=5000), 422, "limit"),
            ("limit text", get("/jobs", limit="ten"), 422, "limit"),
            ("before_id 0", get("/jobs", before_id=0), 422, "before_id"),
            ("before_id huge", get("/jobs", before_id=2**64), 422, "before_id"),
            ("state", get("/jobs", state="DONE"), 422, "state"),
            ("offset", get(f"/jobs/{job_id}/logs", offset=-1), 422, "offset"),
            ("tail", get(f"/jobs/{job_id}/logs", tail=-1), 422, "tail"),
            ("tail huge", get(f"/jobs/{job_id}/logs", tail=10**9), 422, "tail"),
            ("token id", api.delete("/tokens/abc", headers=h), 422, "token_id"),
            ("token id huge", api.delete(f"/tokens/{2**64}", headers=h), 422, "token_id"),
            (
                "empty idempotency key",
                api.post("/jobs", json=OK_JOB, headers={**h, "Idempotency-Key": ""}),
                422,
                "idempotency-key",
            ),
            (
                "empty idempotency key in the body",
                api.post("/jobs", json={**OK_JOB, "idempotency_key": ""}, headers=h),
                422,
                "idempotency_key",
            ),
            (
                "idempotency key too long",
                api.post("/jobs", json=OK_JOB, headers={**h, "Idempotency-Key": "k" * 129}),
                422,
                "idempotency-key",
            ),
        ]
    )
    assert [j["id"] for j in admin.jobs(limit=1000)] == [job_id]


def test_nul_characters_are_refused_not_a_server_error(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    h = admin_headers
    check_all(
        [
            (
                "job name",
                api.post("/jobs", json={**OK_JOB, "name": "a\0b"}, headers=h),
                422,
                "name",
            ),
            (
                "command",
                api.post("/jobs", json={"command": ["echo", "\0"]}, headers=h),
                422,
                "command",
            ),
            ("env", api.post("/jobs", json={**OK_JOB, "env": {"A": "\0"}}, headers=h), 422, "env"),
            (
                "key",
                api.post("/jobs", json={**OK_JOB, "idempotency_key": "\0"}, headers=h),
                422,
                "idempotency_key",
            ),
            ("token name", api.post("/tokens", json={"name": "\0"}, headers=h), 422, "name"),
            (
                "email",
                api.post("/users", json={"name": "u", "email": "a\0@b"}, headers=h),
                422,
                "email",
            ),
            (
                "project query",
                api.get("/jobs", params={"project": "\0"}, headers=h),
                404,
                "project",
            ),
            ("owner query", api.get("/jobs", params={"owner": "\0"}, headers=h), 404, "owner"),
            ("token owner", api.get("/tokens", params={"owner": "\0"}, headers=h), 404, "user"),
            ("project path", api.get("/projects/%00/members", headers=h), 404, "project"),
            ("default project", api.put("/me/default-project/%00", headers=h), 404, "project"),
        ]
    )
    assert_no_jobs(api, admin_headers)
