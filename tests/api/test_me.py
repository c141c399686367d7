"""/me: who the caller is, their projects and roles, and their default project."""

from __future__ import annotations

import httpx

from tests.api.helpers import OK_JOB, Tenants, assert_error


def test_me_shows_the_default_project_and_memberships(tenants: Tenants) -> None:
    alice = tenants.as_("alice")

    me = alice.me()

    assert me["name"] == "alice"
    assert me["facility_role"] == "user"
    assert me["default_project"] == "proj-a"  # her first project
    assert [(p["name"], p["organisation"], p["role"]) for p in me["projects"]] == [
        ("proj-a", "acme", "member")
    ]
    assert tenants.as_("vera").me()["projects"][0]["role"] == "viewer"
    owen = tenants.as_("owen").me()
    assert owen["default_project"] == "proj-a"
    assert owen["projects"][0]["role"] == "owner"
    olga = tenants.as_("olga").me()
    assert olga["facility_role"] == "operator"
    assert olga["default_project"] is None
    assert olga["projects"] == []
    carol = tenants.as_("carol").me()
    assert carol["default_project"] is None
    assert carol["projects"] == []
    admin = tenants.admin.me()
    assert admin["facility_role"] == "admin"
    assert admin["default_project"] == "default"
    assert {(p["name"], p["role"]) for p in admin["projects"]} == {
        ("default", "owner"),
        ("proj-b", "owner"),
    }


def test_changing_the_default_project_changes_where_jobs_go(
    tenants: Tenants, api: httpx.Client
) -> None:
    tenants.admin.add_member("proj-b", "alice", "member")
    alice = tenants.as_("alice")
    assert alice.me()["default_project"] == "proj-a"  # a second project leaves it as it was
    assert alice.submit(["true"])["project"] == "proj-a"

    me = alice.use_project("proj-b")

    assert me["default_project"] == "proj-b"
    assert [p["name"] for p in me["projects"]] == ["proj-a", "proj-b"]
    assert alice.me()["default_project"] == "proj-b"
    assert alice.submit(["true"])["project"] == "proj-b"
    created = api.post("/jobs", json=OK_JOB, headers=tenants.headers("alice"))
    assert created.json()["project"] == "proj-b"
    assert alice.submit(["true"], project="proj-a")["project"] == "proj-a"  # naming still wins

    response = api.put("/me/default-project/default", headers=tenants.headers("alice"))
    assert_error(response, 404, "project")
    assert alice.me()["default_project"] == "proj-b"


def test_leaving_the_default_project_clears_it(tenants: Tenants, api: httpx.Client) -> None:
    tenants.admin.add_member("proj-b", "vera", "member")
    vera = tenants.as_("vera")
    assert vera.me()["default_project"] == "proj-a"

    tenants.as_("owen").remove_member("proj-a", "vera")

    me = vera.me()
    assert me["default_project"] is None
    assert [p["name"] for p in me["projects"]] == ["proj-b"]
    response = api.post("/jobs", json=OK_JOB, headers=tenants.headers("vera"))
    assert_error(response, 422, "project", reason="default project")
    assert vera.submit(["true"], project="proj-b")["project"] == "proj-b"
    assert vera.use_project("proj-b")["default_project"] == "proj-b"
    assert vera.submit(["true"])["project"] == "proj-b"
