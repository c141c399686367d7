"""The projects pages over HTTP: each user sees their own projects, owners manage members
through the forms, and the services' refusals show as the API's would."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

Pages = Callable[[str], PortalSession]


def member_rows(html: str) -> dict[str, str]:
    """user → role, from the members table."""
    found = re.findall(r"<td>([\w.-]+)</td>\s*<td><span class=\"role-badge role-(\w+)\"", html)
    return dict(found)


def test_a_member_sees_their_projects_only_and_no_member_form(
    pages: Pages, tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])

    listing = alice.get("/projects")
    detail = alice.get("/projects/proj-a")
    other = alice.get("/projects/proj-b")

    assert listing.status_code == 200
    assert 'href="/projects/proj-a"' in listing.text
    assert "proj-b" not in listing.text
    assert "New project" not in listing.text, "only admins create projects"
    assert detail.status_code == 200
    assert member_rows(detail.text) == {"alice": "member", "owen": "owner", "vera": "viewer"}
    assert 'href="/jobs?project=proj-a"' in detail.text
    assert "Save member" not in detail.text
    assert "acme" in detail.text
    assert other.status_code == 404
    assert "no project named" in other.text


def test_a_member_posting_the_member_form_is_refused_and_nothing_changes(
    pages: Pages, tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    alice.get("/projects/proj-a")

    added = alice.post("/projects/proj-a/members", {"user": "carol", "role": "owner"})
    removed = alice.post("/projects/proj-a/members/owen/remove")
    elsewhere = alice.post("/projects/proj-b/members", {"user": "carol", "role": "member"})

    assert added.status_code == 403
    assert "only admin or owner may" in added.text
    assert removed.status_code == 403
    assert elsewhere.status_code == 404
    assert member_rows(alice.get("/projects/proj-a").text) == {
        "alice": "member",
        "owen": "owner",
        "vera": "viewer",
    }


def test_an_owner_adds_changes_and_removes_members_through_the_forms(
    pages: Pages, tenants: Tenants
) -> None:
    owen = pages(tenants.tokens["owen"])
    page = owen.get("/projects/proj-a")
    assert 'action="/projects/proj-a/members"' in page.text
    assert '<label for="user">User name</label>' in page.text

    added = owen.post("/projects/proj-a/members", {"user": "carol", "role": "viewer"})
    after_add = owen.get("/projects/proj-a", saved="member")
    promoted = owen.post("/projects/proj-a/members", {"user": "carol", "role": "owner"})
    removed = owen.post("/projects/proj-a/members/alice/remove")
    final = owen.get("/projects/proj-a")

    assert added.status_code == 303
    assert added.headers["location"] == "/projects/proj-a?saved=member"
    assert "The member list is saved." in after_add.text
    assert member_rows(after_add.text)["carol"] == "viewer"
    assert promoted.status_code == 303
    assert removed.status_code == 303
    assert member_rows(final.text) == {"carol": "owner", "owen": "owner", "vera": "viewer"}
    api_view = {m["user"]: m["role"] for m in tenants.admin.members("proj-a")}
    assert api_view == member_rows(final.text)


def test_the_form_shows_the_services_refusals_beside_the_field(
    pages: Pages, tenants: Tenants
) -> None:
    owen = pages(tenants.tokens["owen"])
    owen.get("/projects/proj-a")

    last_owner = owen.post("/projects/proj-a/members/owen/remove")
    demoted = owen.post("/projects/proj-a/members", {"user": "owen", "role": "member"})
    unknown = owen.post("/projects/proj-a/members", {"user": "nobody", "role": "member"})
    bad_role = owen.post("/projects/proj-a/members", {"user": "carol", "role": "boss"})

    assert last_owner.status_code == 409
    assert "a project keeps at least one owner" in last_owner.text
    assert 'role="alert"' in last_owner.text
    assert demoted.status_code == 409
    assert 'id="role-error">a project keeps at least one owner' in demoted.text
    assert unknown.status_code == 422
    assert 'id="user-error">no user named &#39;nobody&#39;' in unknown.text
    assert 'value="nobody"' in unknown.text, "what was typed is kept"
    assert 'aria-invalid="true"' in unknown.text
    assert bad_role.status_code == 422
    assert 'id="role-error">must be one of: owner, member, viewer' in bad_role.text
    assert member_rows(owen.get("/projects/proj-a").text)["owen"] == "owner"


def test_an_admin_creates_a_project_with_the_form(
    pages: Pages, tenants: Tenants, live_server: LiveServer
) -> None:
    admin = pages(live_server.admin_token)
    listing = admin.get("/projects")
    assert "New project" in listing.text
    assert '<option value="acme"' in listing.text

    created = admin.post("/projects", {"name": "proj-c", "organisation": "acme", "owner": "carol"})
    again = admin.post("/projects", {"name": "proj-c", "organisation": "acme", "owner": ""})
    nameless = admin.post("/projects", {"name": " ", "organisation": "acme", "owner": ""})

    assert created.status_code == 303
    assert created.headers["location"] == "/projects/proj-c?saved=created"
    page = admin.get("/projects/proj-c", saved="created")
    assert member_rows(page.text) == {"carol": "owner"}
    assert again.status_code == 409
    assert 'id="name-error">a project named &#39;proj-c&#39; already exists' in again.text
    assert nameless.status_code == 422
    assert 'id="name-error">must be 1 to 64 ASCII letters' in nameless.text  # the API's words
    carol = pages(tenants.tokens["carol"])
    assert 'href="/projects/proj-c"' in carol.get("/projects").text
