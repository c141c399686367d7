"""Tenant isolation and roles: a non-member is told nothing exists (404); a member whose role is
too low is told why (403); facility roles see or change only what they should."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import httpx
import pytest

from aifactory.client.client import ApiError, Client
from tests.api.helpers import OK_JOB, USERS, Tenants, assert_error, check_all


def refused(call: Callable[[], object], status: int, *fields: str | None) -> ApiError:
    """Call and expect the SDK to raise an ApiError with `status` naming `fields` (if any)."""
    with pytest.raises(ApiError) as raised:
        call()
    assert raised.value.status == status, raised.value.message
    if fields:
        assert [e["field"] for e in raised.value.errors] == list(fields)
    return raised.value


def test_admin_builds_the_tenancy_through_the_api(tenants: Tenants) -> None:
    admin = tenants.admin

    assert [(o["name"], o["kind"]) for o in admin.organisations()] == [
        ("default", "research_institute"),
        ("acme", "university"),
    ]
    projects = {p["name"]: p for p in admin.projects()}
    assert set(projects) == {"default", "proj-a", "proj-b"}
    assert projects["proj-a"]["organisation"] == "acme"
    assert admin.members("proj-a") == [
        {"user": "alice", "role": "member"},
        {"user": "owen", "role": "owner"},
        {"user": "vera", "role": "viewer"},
    ]
    assert admin.members("proj-b") == [
        {"user": "admin", "role": "owner"},
        {"user": "bob", "role": "member"},
    ]
    roles = {u["name"]: u["facility_role"] for u in admin.users()}
    assert roles == {"admin": "admin", **USERS}
    refused(lambda: admin.create_organisation("acme", "sme"), 409, "name")
    refused(lambda: admin.create_organisation("x", "charity"), 422, "kind")
    refused(lambda: admin.create_project("proj-a", "acme"), 409, "name")
    refused(lambda: admin.create_project("p", "nowhere"), 404, "organisation")
    refused(lambda: admin.create_project("p", "acme", owner="ghost"), 404, "owner")
    refused(lambda: admin.create_user("alice"), 409, "name")
    refused(lambda: admin.create_user("x", facility_role="root"), 422, "facility_role")
    refused(lambda: admin.create_user("bad name"), 422, "name")
    refused(lambda: admin.create_user("y", email="not-an-email"), 422, "email")
    refused(lambda: admin.add_member("proj-a", "ghost"), 404, "user")
    refused(lambda: admin.add_member("proj-a", "bob", "boss"), 422, "role")


def test_a_non_member_cannot_see_or_touch_another_projects_job(
    tenants: Tenants, api: httpx.Client
) -> None:
    bob, alice = tenants.as_("bob"), tenants.as_("alice")
    bobs_job = bob.submit(["train"], project="proj-b")
    assert bobs_job["project"] == "proj-b"
    alices_job = alice.submit(["eval"])
    assert alices_job["project"] == "proj-a"
    h = tenants.headers("alice")
    job_id = bobs_job["id"]

    check_all(
        [
            ("show", api.get(f"/jobs/{job_id}", headers=h), 404, "job_id"),
            ("logs", api.get(f"/jobs/{job_id}/logs", headers=h), 404, "job_id"),
            ("cancel", api.post(f"/jobs/{job_id}/cancel", headers=h), 404, "job_id"),
            ("list B", api.get("/jobs", params={"project": "proj-b"}, headers=h), 404, "project"),
            ("members B", api.get("/projects/proj-b/members", headers=h), 404, "project"),
            (
                "submit into B",
                api.post("/jobs", json={**OK_JOB, "project": "proj-b"}, headers=h),
                404,
                "project",
            ),
            (
                "add self to B",
                api.put("/projects/proj-b/members", json={"user": "alice"}, headers=h),
                404,
                "project",
            ),
            ("use B", api.put("/me/default-project/proj-b", headers=h), 404, "project"),
        ]
    )
    # The 404 for an existing job reads like the one for a job that does not exist.
    missing = api.get("/jobs/999999", headers=h).json()
    hidden = api.get(f"/jobs/{job_id}", headers=h).json()
    assert hidden["message"].replace(str(job_id), "N") == missing["message"].replace("999999", "N")
    hidden_project = api.get("/projects/proj-b/members", headers=h).json()
    assert hidden_project["message"] == (
        api.get("/projects/proj-zzz/members", headers=h).json()["message"].replace("zzz", "b")
    )

    assert [j["id"] for j in alice.jobs()] == [alices_job["id"]]
    assert [j["id"] for j in alice.jobs(owner="bob")] == []
    assert [p["name"] for p in alice.projects()] == ["proj-a"]
    assert [o["name"] for o in alice.organisations()] == ["acme"]
    assert bob.job(job_id)["state"] == "PENDING"  # untouched
    assert [j["id"] for j in bob.jobs()] == [job_id]
    refused(lambda: bob.job(alices_job["id"]), 404, "job_id")


def test_a_viewer_can_read_but_not_submit_or_cancel_a_member_can(
    tenants: Tenants, api: httpx.Client
) -> None:
    alices_job = tenants.as_("alice").submit(["train"])
    vera = tenants.as_("vera")

    assert [j["id"] for j in vera.jobs()] == [alices_job["id"]]
    assert [j["id"] for j in vera.jobs(project="proj-a")] == [alices_job["id"]]
    assert vera.job(alices_job["id"])["user"] == "alice"
    assert vera.logs(alices_job["id"])["text"] == ""
    assert len(vera.members("proj-a")) == 3

    denied = refused(lambda: vera.submit(["true"], project="proj-a"), 403)
    assert denied.code == "permission_denied"
    assert "viewer" in denied.message
    refused(lambda: vera.submit(["true"]), 403)  # proj-a is her default project too
    refused(lambda: vera.cancel(alices_job["id"]), 403)
    refused(lambda: vera.add_member("proj-a", "carol"), 403)
    assert vera.job(alices_job["id"])["state"] == "PENDING"
    assert [j["id"] for j in vera.jobs()] == [alices_job["id"]]
    body = assert_error(
        api.post("/jobs", json=OK_JOB, headers=tenants.headers("vera")), 403, reason="viewer"
    )
    assert body["error"] == "permission_denied"

    # A member may cancel any job in the project, not only their own.
    owens_job = tenants.as_("owen").submit(["true"])
    assert tenants.as_("alice").cancel(owens_job["id"])["state"] == "CANCELLED"
    assert vera.job(owens_job["id"])["events"][-1]["actor"] == "alice"


def test_only_owners_manage_members(tenants: Tenants) -> None:
    alice, owen = tenants.as_("alice"), tenants.as_("owen")

    refused(lambda: alice.add_member("proj-a", "carol"), 403)
    refused(lambda: alice.remove_member("proj-a", "vera"), 403)
    assert "carol" not in [m["user"] for m in owen.members("proj-a")]

    assert owen.add_member("proj-a", "carol", "viewer") == {"user": "carol", "role": "viewer"}
    assert owen.add_member("proj-a", "carol", "member") == {"user": "carol", "role": "member"}
    carol = tenants.as_("carol")
    assert [p["name"] for p in carol.projects()] == ["proj-a"]
    assert carol.submit(["true"])["project"] == "proj-a"

    owen.remove_member("proj-a", "carol")
    assert "carol" not in [m["user"] for m in owen.members("proj-a")]
    refused(lambda: carol.jobs(project="proj-a"), 404, "project")
    refused(lambda: owen.remove_member("proj-a", "carol"), 404, "user")
    refused(lambda: owen.add_member("proj-b", "carol"), 404, "project")


def test_a_project_keeps_at_least_one_owner(tenants: Tenants) -> None:
    owen = tenants.as_("owen")

    refused(lambda: owen.remove_member("proj-a", "owen"), 409, "user")
    refused(lambda: owen.add_member("proj-a", "owen", "member"), 409, "role")
    refused(lambda: tenants.admin.remove_member("proj-a", "owen"), 409, "user")
    assert {"user": "owen", "role": "owner"} in owen.members("proj-a")

    owen.add_member("proj-a", "alice", "owner")  # a second owner: now owen may step down
    owen.add_member("proj-a", "owen", "member")
    members = {m["user"]: m["role"] for m in tenants.as_("alice").members("proj-a")}
    assert members == {"alice": "owner", "owen": "member", "vera": "viewer"}
    refused(lambda: owen.add_member("proj-a", "vera", "owner"), 403)


def test_only_admins_create_organisations_projects_and_users(tenants: Tenants) -> None:
    for name in ["owen", "alice", "olga"]:
        user = tenants.as_(name)
        refused(partial(user.create_organisation, "rogue", "startup"), 403)
        refused(partial(user.create_project, "rogue", "acme"), 403)
        refused(partial(user.create_user, "rogue"), 403)
        refused(partial(user.create_user, "rogue2", facility_role="admin"), 403)
    refused(lambda: tenants.as_("alice").users(), 403)
    names = [u["name"] for u in tenants.admin.users()]
    assert "rogue" not in names
    assert "rogue2" not in names
    assert "rogue" not in [p["name"] for p in tenants.admin.projects()]


def test_an_operator_sees_every_job_but_changes_no_tenancy(tenants: Tenants) -> None:
    in_b = tenants.as_("bob").submit(["b"])
    in_a = tenants.as_("alice").submit(["a"])
    olga = tenants.as_("olga")

    assert [j["id"] for j in olga.jobs()] == [in_a["id"], in_b["id"]]
    assert [j["id"] for j in olga.jobs(project="proj-b")] == [in_b["id"]]
    assert olga.job(in_b["id"])["user"] == "bob"
    assert olga.logs(in_b["id"])["complete"] is False
    assert {p["name"] for p in olga.projects()} == {"default", "proj-a", "proj-b"}
    assert {u["name"] for u in olga.users()} >= {"alice", "bob"}
    assert len(olga.members("proj-b")) == 2
    refused(lambda: olga.add_member("proj-b", "carol"), 403)
    refused(lambda: olga.remove_member("proj-b", "bob"), 403)
    # Operators stop jobs to run the facility.
    assert olga.cancel(in_b["id"])["state"] == "CANCELLED"


def test_a_user_with_no_project_sees_nothing(tenants: Tenants, api: httpx.Client) -> None:
    tenants.as_("bob").submit(["b"])
    carol = tenants.as_("carol")

    assert carol.jobs() == []
    assert carol.projects() == []
    assert carol.organisations() == []
    refused(lambda: carol.submit(["true"]), 422, "project")
    assert carol.facility()["jobs_by_state"] == {"PENDING": 1}  # load is public, jobs are not


def test_an_operator_cancels_in_any_project_but_never_submits_as_a_tenant(
    tenants: Tenants, clients: Callable[[str], Client]
) -> None:
    bob, olga = clients(tenants.tokens["bob"]), clients(tenants.tokens["olga"])
    job = bob.submit(["sleep", "1"], project="proj-b")
    with pytest.raises(ApiError) as refused:
        olga.submit(["echo", "mine"], project="proj-b")
    assert refused.value.status == 403
    cancelled = olga.cancel(job["id"])
    assert cancelled["state"] == "CANCELLED"
    assert cancelled["ended_at"] is not None
