"""Rules of the HTTP surface every route keeps (found by tests/api/test_conformance.py): a 405
names every method of its path, a body that cannot be read is refused in the one error shape,
and a moment is an ISO 8601 date-time or date, never a bare number."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_error, check_all

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/projects", "GET, POST"),
        ("/projects/proj-a/members", "GET, PUT"),
        ("/jobs", "GET, POST"),
        ("/tokens", "GET, POST"),
        ("/health", "GET"),
        ("/tokens/1", "DELETE"),
    ],
)
def test_a_405_names_every_method_of_its_path(
    api: httpx.Client, admin_headers: dict[str, str], path: str, methods: str
) -> None:
    for method in ("OPTIONS", "PATCH", "HEAD"):
        response = api.request(method, path, headers=admin_headers)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["allow"] == methods, (method, path)
        if method != "HEAD":
            body = assert_error(response, 405)
            assert body["error"] == "method_not_allowed"


def test_the_portal_names_every_method_of_its_path_too(api: httpx.Client) -> None:
    portal = str(api.base_url).removesuffix("/").removesuffix("/api/v1")
    response = httpx.request("DELETE", f"{portal}/login")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


# Nested deeper than Python's JSON reader goes, and bytes that are not UTF-8: FastAPI answers
# both with a bare 400 ("There was an error parsing the body") where a job's route answered 422.
DEEP = "[" * 5000 + "]" * 5000
NOT_UTF8 = b'{"name": "\xff\xfe"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/organisations"),
        ("POST", "/users"),
        ("POST", "/projects"),
        ("PUT", "/projects/proj-a/members"),
        ("POST", "/tokens"),
        ("PUT", "/me/password"),
        ("PUT", "/facility/admission"),
        ("POST", "/programmes"),
        ("POST", "/whatif"),
        ("POST", "/jobs"),
        ("PUT", "/jobs/1/priority"),
    ],
)
def test_a_body_that_cannot_be_read_is_422_in_the_error_shape(
    api: httpx.Client, admin_headers: dict[str, str], method: str, path: str
) -> None:
    headers = {**admin_headers, **JSON}
    for content, why in [(DEEP, "nested too deeply"), (NOT_UTF8, "")]:
        response = api.request(method, path, content=content, headers=headers)
        body = assert_error(response, 422, "body", reason="not valid JSON")
        assert body["error"] == "invalid_input"
        assert body["message"].startswith("body: "), body
        if path != "/jobs" and why:  # the jobs' reader (pydantic's) says it its own way
            assert why in body["message"], body


def test_a_moment_is_a_date_time_or_a_date_never_a_number(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    h = admin_headers
    period = {"from": "2026-01-01", "to": "2026-02-01T00:00:00Z"}
    cases = [
        (f"{path} {name}={value}", api.get(path, params={name: value}, headers=h), 422, name)
        for path, name in [("/audit", "until"), ("/audit/export", "since"), ("/usage", "to")]
        for value in ["0.5", "0", "20260101", "1e9", "-1"]
    ]
    cases += [
        (
            f"funder from={value}",
            api.get("/reports/funder", params={**period, "from": value}, headers=h),
            422,
            "from",
        )
        for value in ["1700000000", "1.5"]
    ]
    check_all(cases)
    said = api.get("/audit", params={"until": "0.5"}, headers=h).json()
    assert said["message"].startswith("until: must be an ISO 8601 date-time or date"), said
    for params in [
        {"since": "2026-01-01"},
        {"until": "2026-01-31T12:00:00Z"},
        {"since": "2026-01-31T12:00:00+01:00", "until": "2026-02-01T00:00:00"},
    ]:
        assert api.get("/audit", params=params, headers=h).status_code == 200, params
    assert api.get("/reports/funder", params=period, headers=h).status_code == 200


def test_a_moment_in_a_body_is_never_a_number(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    call = {
        "programme": "research",
        "name": "spring",
        "title": "Spring call",
        "opens_at": "2026-01-01",
        "closes_at": "2099-01-01T00:00:00Z",
        "budget_gpu_hours": 100.0,
    }
    cases = [
        (
            f"{field}={value!r}",
            api.post("/calls", json={**call, field: value}, headers=admin_headers),
            422,
            field,
        )
        for field in ("opens_at", "closes_at")
        for value in [1700000000, 0.5, "1700000000", "0.5"]
    ]
    check_all(cases)
    assert api.post("/calls", json=call, headers=admin_headers).status_code == 201


def test_a_query_parameter_given_twice_is_refused(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    # FastAPI would take the last value quietly; no parameter of this API is a list.
    cases = [
        ("audit object", api.get("/audit?object=a&object=b", headers=admin_headers), 422, "object"),
        ("jobs limit", api.get("/jobs?limit=1&limit=2", headers=admin_headers), 422, "limit"),
        (
            "usage to",
            api.get("/usage?to=2026-01-01&to=2026-02-01", headers=admin_headers),
            422,
            "to",
        ),
    ]
    check_all(cases)
    said = api.get("/audit?object=a&object=b", headers=admin_headers).json()
    assert said["message"] == "object: is given more than once", said
    assert api.get("/audit?object=a&actor=b", headers=admin_headers).status_code == 200
