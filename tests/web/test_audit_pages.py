"""The audit log page (HTTP, no browser): who may read it and how much, filters, paging newest
first with the cursor, and the chain check.

tests.api.conftest's `tenants`: proj-a (owen owner, alice member, vera viewer), proj-b (bob
member), olga an operator, carol in no project. Building that world wrote the events.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

SEQ = re.compile(r'<th scope="row" class="num">(\d+)</th>')


def seqs(html: str) -> list[int]:
    return [int(s) for s in SEQ.findall(html)]


def test_the_log_is_refused_to_viewers_operators_and_users_without_a_project(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    for name in ("vera", "olga", "carol"):
        session = pages(tenants.tokens[name])
        refused = session.get("/audit")
        assert refused.status_code == 403, name
        assert "only admin, auditor, owner or member may read the audit log" in refused.text
        assert 'href="/audit"' not in session.get("/").text, f"{name}'s menu has no audit log"


def test_a_member_reads_only_their_projects_events_and_cannot_verify(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    alice = pages(tenants.tokens["alice"])
    page = alice.get("/audit")
    assert page.status_code == 200
    assert "The events of your projects" in page.text
    theirs = [e["seq"] for e in tenants.as_("alice").audit(limit=1000)]
    assert theirs, "the world wrote events of proj-a"
    assert seqs(page.text) == sorted(theirs, reverse=True)
    everything = {e["seq"] for e in tenants.admin.audit(limit=1000)}
    assert set(theirs) < everything, "other projects' and the facility's events are left out"
    assert "Verify the hash chain" not in page.text
    assert alice.http.get("/audit/verify", headers={"HX-Request": "true"}).status_code == 403


def test_an_admin_filters_the_log(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    admin = pages(live_server.admin_token)
    created = admin.get("/audit", action="project.create")
    assert created.status_code == 200
    expected = [e["seq"] for e in tenants.admin.audit(action="project.create")]
    assert len(expected) == 2
    assert seqs(created.text) == expected[::-1]
    assert re.search(r'id="action"[^>]*value="project.create"|value="project.create"', created.text)
    by_actor = admin.get("/audit", actor="nobody-at-all")
    assert seqs(by_actor.text) == []
    assert "No event matches these filters" in by_actor.text
    one = tenants.admin.audit(action="project.create")[0]
    by_object = admin.get("/audit", object=one["object"])
    assert one["seq"] in seqs(by_object.text)
    before_today = admin.get("/audit", until="2000-01-01")
    assert seqs(before_today.text) == []
    today = one["at"][:10]
    assert one["seq"] in seqs(admin.get("/audit", since=today, action="project.create").text)
    assert '<dl class="detail">' in created.text  # details as name and value, no raw JSON
    bad = admin.get("/audit", since="yesterday-ish")
    assert bad.status_code == 422
    assert 'id="since-error">must be a date' in bad.text


def test_an_admin_pages_newest_first_with_the_cursor_and_verifies_the_chain(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    admin = pages(live_server.admin_token)
    every = sorted((e["seq"] for e in tenants.admin.audit(limit=1000)), reverse=True)
    assert len(every) > 6
    first = admin.get("/audit", limit="3")
    assert seqs(first.text) == every[:3]
    older = re.search(r'href="/audit\?([^"]+)" rel="next"', first.text)
    assert older, first.text
    assert f"before={every[2]}" in older.group(1)
    second = admin.http.get(f"/audit?{older.group(1).replace('&amp;', '&')}")
    assert seqs(second.text) == every[3:6]
    newer = re.search(r'href="/audit\?([^"]+)" rel="prev"', second.text)
    assert newer, second.text
    back = admin.http.get(f"/audit?{newer.group(1).replace('&amp;', '&')}")
    assert seqs(back.text) == every[:3]

    assert "Verify the hash chain" in first.text
    fragment = admin.http.get("/audit/verify", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    checked = tenants.admin.audit_verify()["checked"]
    assert f"Chain intact up to seq {checked}" in fragment.text
    assert "<html" not in fragment.text
    plain = admin.get("/audit", verify="yes")
    assert re.search(r"Chain intact up to seq \d+", plain.text)
