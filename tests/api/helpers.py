"""Assertions shared by the API tests: the one error body shape, and table-driven checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from aifactory.client.client import Client

ANY_FIELD = object()
OK_JOB: dict[str, Any] = {"command": ["true"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(
    response: httpx.Response,
    status: int,
    field: object = ANY_FIELD,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """Assert an error response: its status, JSON shape, the field it names and a reason."""
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "errors"}, body
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    assert body["errors"], body
    for detail in body["errors"]:
        assert set(detail) == {"field", "reason"}, body
        assert isinstance(detail["reason"], str), body
        assert detail["reason"], body
    fields = [d["field"] for d in body["errors"]]
    if field is not ANY_FIELD:
        assert field in fields, f"expected field {field!r} in {fields}: {body}"
    if reason is not None:
        said = " ".join([body["message"], *(d["reason"] for d in body["errors"])]).lower()
        assert reason.lower() in said, f"expected {reason!r} in {body}"
    return body


def check_all(cases: Iterable[tuple[str, httpx.Response, int, object]]) -> None:
    """Check many (label, response, status, field) cases; report every mismatch at once."""
    failures = []
    for label, response, status, field in cases:
        try:
            assert_error(response, status, field)
        except AssertionError as exc:
            failures.append(f"{label}: {exc}")
    assert not failures, "\n".join(failures)


@dataclass
class Tenants:
    """Organisation `acme` with projects `proj-a` and `proj-b`.

    proj-a: owen (owner), alice (member), vera (viewer). proj-b: admin (owner), bob (member).
    olga is an operator with no project; carol is a user with no project.
    """

    admin: Client
    tokens: dict[str, str]
    make: Callable[[str], Client]

    def as_(self, name: str) -> Client:
        return self.make(self.tokens[name])

    def headers(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])


USERS = {
    "owen": "user",
    "alice": "user",
    "vera": "user",
    "bob": "user",
    "olga": "operator",
    "carol": "user",
}
