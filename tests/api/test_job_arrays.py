"""An array through the real API: one submission answers with its first task, carrying the
array's id; the tasks are listed by it; a bad array is a 422 naming `array`."""

from __future__ import annotations

import httpx

from tests.api.helpers import Tenants


def test_an_array_is_submitted_once_and_listed_by_its_id(
    api: httpx.Client, tenants: Tenants
) -> None:
    alice = tenants.headers("alice")
    made = api.post(
        "/jobs", json={"command": ["true"], "project": "proj-a", "array": "0-6:2%2"}, headers=alice
    )
    assert made.status_code == 201, made.text
    first = made.json()
    assert (first["array_id"], first["array_index"], first["array_throttle"]) == (
        first["id"],
        0,
        2,
    )
    tasks = api.get("/jobs", params={"array": first["id"]}, headers=alice).json()
    assert sorted(t["array_index"] for t in tasks) == [0, 2, 4, 6]
    assert {t["array_id"] for t in tasks} == {first["id"]}
    bob = api.get("/jobs", params={"array": first["id"]}, headers=tenants.headers("bob")).json()
    assert bob == []  # another project's array: nothing of it
    bad = api.post(
        "/jobs", json={"command": ["true"], "project": "proj-a", "array": "9-1"}, headers=alice
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "array"
    assert "runs backwards" in bad.json()["errors"][0]["reason"]
