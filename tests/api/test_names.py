"""One rule for every name (domain.names): 1 to 64 ASCII letters, digits, '.', '_' or '-',
beginning with a letter or digit; a dataset's in lower case. A Greek capital that looks like a
Latin one is refused alike for users, organisations, projects, programmes, calls, datasets,
sites and tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, check_all

GREEK = "ΑΒΕ"  # Greek Alpha, Beta, Epsilon: "ABE" to the eye
MIXED = "AΒΕ"  # a Latin A, then Greek
NOT_NAMES = [GREEK, MIXED, "abé", "a b", "-ab", ".ab", "a/b", "ab\n", "", "a" * 65, "ǅ"]
CALL = {
    "programme": "research",
    "title": "Spring call",
    "opens_at": "2026-01-01",
    "closes_at": "2099-01-01",
    "budget_gpu_hours": 100.0,
}
PROGRAMME = {
    "title": "HPC pilots",
    "eligible_kinds": ["university"],
    "gpu_tariffs": {"*": "2"},
    "capacity_share": 0.01,
}
DATASET = {
    "project": None,
    "controller": "UvA",
    "processor": "AI Factory NL",
    "path": "books",
    "classification": "public",
    "residency": "NL",
    "retention_until": "2099-01-01",
    "licence": "CC-BY-4.0",
}
# What names a thing, and a body that would create it under the name given.
Named = Callable[[str], dict[str, Any]]
CREATES: list[tuple[str, str, Named]] = [
    ("/organisations", "name", lambda n: {"name": n, "kind": "sme"}),
    ("/users", "name", lambda n: {"name": n, "token": False}),
    ("/projects", "name", lambda n: {"name": n, "organisation": "default"}),
    ("/projects", "organisation", lambda n: {"name": "p", "organisation": n}),
    ("/tokens", "name", lambda n: {"name": n}),
    ("/tokens", "user", lambda n: {"user": n}),
    ("/programmes", "name", lambda n: {**PROGRAMME, "name": n}),
    ("/calls", "name", lambda n: {**CALL, "name": n}),
    ("/datasets", "name", lambda n: {**DATASET, "name": n}),
]


@pytest.mark.parametrize(
    ("path", "field", "body"), CREATES, ids=[f"{p} {f}" for p, f, _ in CREATES]
)
def test_every_name_keeps_one_rule(
    api: httpx.Client, admin_headers: dict[str, str], path: str, field: str, body: Named
) -> None:
    cases = [
        (repr(name), api.post(path, json=body(name), headers=admin_headers), 422, field)
        for name in NOT_NAMES
    ]
    check_all(cases)
    said = assert_error(api.post(path, json=body(GREEK), headers=admin_headers), 422, field)
    assert "ASCII letters" in said["message"], said


def test_a_name_may_use_every_character_the_rule_allows(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    for path, field, body in CREATES:
        if field != "name" or path in ("/datasets", "/programmes"):  # no room for them here
            continue
        name = "Ab-0.c_D" if path != "/calls" else "spring-26.a_B"
        created = api.post(path, json=body(name), headers=admin_headers)
        assert created.status_code == 201, (path, created.text)
        assert created.json()["name"] == name
    longest = "a" + "b" * 63
    assert api.post("/organisations", json={"name": longest, "kind": "sme"}, headers=admin_headers)


def test_a_dataset_name_is_also_lower_case(
    api: httpx.Client, admin_headers: dict[str, str]
) -> None:
    response = api.post("/datasets", json={**DATASET, "name": "NL-Books"}, headers=admin_headers)
    assert_error(response, 422, "name", reason="lower case")
    listed = api.get("/openapi.json").json()["components"]["schemas"]
    assert listed["DatasetCreate"]["properties"]["name"]["pattern"] == "^[a-z0-9][a-z0-9._-]{0,63}$"


def test_a_site_name_keeps_the_rule_too(api: httpx.Client, admin_headers: dict[str, str]) -> None:
    response = api.put(f"/sites/{GREEK}", json={"country": "NL"}, headers=admin_headers)
    assert_error(response, 422, "name", reason="ASCII letters")


def test_the_schema_documents_the_rule(api: httpx.Client) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    for model in ("OrganisationCreate", "UserCreate", "ProjectCreate", "TokenCreate"):
        name = schemas[model]["properties"]["name"]
        assert name["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", model
        assert "ASCII letters" in name["description"], model
