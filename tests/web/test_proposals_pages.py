"""Calls, proposals and reviews through the portal's forms (HTTP, no browser).

The world: tests.api.conftest's `tenants` (organisation acme: proj-a with owen, alice and vera;
proj-b with bob), reviewers rita (no project) and rex (a viewer of proj-b, so a member of acme:
in conflict with every acme proposal), and call r1 of the bootstrap's research programme
(1000 GPU-h; requests of at most 100 GPU-h are starter awards, so these ask for more).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aifactory.client.client import Client
from aifactory.domain.access_modes import due_day
from tests.api.helpers import Tenants
from tests.web.conftest import PortalSession

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
APPLICATION = {
    "call": "r1",
    "project": "proj-a",
    "title": "Protein folding at scale",
    "abstract": "We fold proteins.",
    "justification": "Eight GPUs for a month.",
    "requested_gpu_hours": "300",
    "gpu_model": "h100",
    "planned_datasets": "pdb, uniprot",
}


@dataclass
class World:
    tenants: Tenants
    pages: Callable[[str], PortalSession]
    admin_token: str

    @property
    def admin(self) -> Client:
        return self.tenants.admin

    def as_(self, name: str) -> PortalSession:
        return self.pages(self.admin_token if name == "admin" else self.tenants.tokens[name])

    def propose(self, user: str = "owen", project: str = "proj-a", hours: float = 300) -> int:
        found: dict[str, Any] = self.tenants.as_(user).submit_proposal(
            call="r1",
            project=project,
            title=f"Work of {project}",
            abstract="An abstract.",
            justification="A justification.",
            requested_gpu_hours=hours,
        )
        assert found["state"] == "submitted"
        return int(found["id"])


@pytest.fixture
def world(tenants: Tenants, pages: Callable[[str], PortalSession], live_server: Any) -> World:
    admin = tenants.admin
    for name in ("rita", "rex"):
        tenants.tokens[name] = admin.create_user(name, facility_role="reviewer")["token"]
    admin.add_member("proj-b", "rex", "viewer")
    admin.create_call(
        "r1",
        programme="research",
        title="Research call 1",
        opens_at=NOW - DAY,
        closes_at=NOW + 30 * DAY,
        budget_gpu_hours=1000,
    )
    return World(tenants, pages, live_server.admin_token)


def test_a_member_applies_to_an_open_call_through_the_form(world: World) -> None:
    alice = world.as_("alice")
    listing = alice.get("/proposals")
    assert listing.status_code == 200
    assert "Research call 1" in listing.text
    assert 'href="/proposals/new?call=r1"' in listing.text
    assert "Open a call" not in listing.text, "only admins open calls"
    form = alice.get("/proposals/new", call="r1")
    assert form.status_code == 200
    assert '<option value="proj-a" selected>' not in form.text  # the call was chosen, not this
    assert '<option value="r1" selected>' in form.text
    assert '<label for="requested_gpu_hours">' in form.text

    sent = alice.post("/proposals/new", APPLICATION)
    assert sent.status_code == 303, sent.text
    pid = int(sent.headers["location"].rsplit("/", 1)[1])
    (stored,) = world.admin.proposals()
    assert (stored["id"], stored["project"], stored["submitted_by"]) == (pid, "proj-a", "alice")
    assert (stored["requested_gpu_hours"], stored["planned_datasets"]) == (
        300.0,
        ["pdb", "uniprot"],
    )
    shown = alice.get(f"/proposals/{pid}")
    assert shown.status_code == 200
    assert "Protein folding at scale" in shown.text
    assert 'class="state state-submitted"' in shown.text
    assert "Award" not in shown.text, "only admins decide"


def test_bad_input_re_renders_the_form_with_the_message_and_what_was_typed(world: World) -> None:
    owen = world.as_("owen")
    owen.get("/proposals/new")
    negative = owen.post("/proposals/new", {**APPLICATION, "requested_gpu_hours": "-5"})
    assert negative.status_code == 422
    assert "must be above 0 and at most the call&#39;s budget, 1000 GPU-h" in negative.text
    assert re.search(r'id="requested_gpu_hours"[^>]*aria-invalid="true"', negative.text)
    assert 'value="Protein folding at scale"' in negative.text
    assert "We fold proteins.</textarea>" in negative.text

    words = owen.post("/proposals/new", {**APPLICATION, "requested_gpu_hours": "lots"})
    assert words.status_code == 422
    assert 'id="requested_gpu_hours-error">must be a number<' in words.text
    empty = owen.post("/proposals/new", {**APPLICATION, "title": "  "})
    assert empty.status_code == 422
    assert 'id="title-error">must not be empty<' in empty.text
    viewer = world.as_("vera").post("/proposals/new", APPLICATION)
    assert viewer.status_code == 403
    assert world.admin.proposals() == []


def test_a_reviewer_sees_only_the_proposals_assigned_to_them(world: World) -> None:
    mine = world.propose("owen", "proj-a")
    other = world.propose("bob", "proj-b")
    world.admin.assign_reviewer(mine, "rita")
    rita = world.as_("rita")
    listing = rita.get("/proposals")
    assert listing.status_code == 200
    assert "Proposals assigned to you" in listing.text
    assert f'href="/proposals/{mine}"' in listing.text
    assert f'href="/proposals/{other}"' not in listing.text
    assert rita.get(f"/proposals/{other}").status_code == 404
    page = rita.get(f"/proposals/{mine}")
    assert page.status_code == 200
    assert f'action="/proposals/{mine}/reviews"' in page.text
    assert "Assign a reviewer" not in page.text


def test_conflicts_of_interest_are_shown_to_the_admin_and_to_the_reviewer(world: World) -> None:
    pid = world.propose()
    admin = world.as_("admin")
    page = admin.get(f"/proposals/{pid}")
    notice = re.search(r'<p class="notice warn coi" id="coi-candidates">(.*?)</p>', page.text, re.S)
    assert notice, page.text
    assert "rex" in notice.group(1)
    assert "acme" in notice.group(1)
    assert '<option value="rita">' in page.text
    assert '<option value="rex">' not in page.text, "a conflicted reviewer is not offered"

    forced = admin.post(f"/proposals/{pid}/reviewers", {"reviewer": "rex"})
    assert forced.status_code == 409
    assert "reviewer rex belongs to organisation acme" in forced.text
    assert admin.post(f"/proposals/{pid}/reviewers", {"reviewer": "rita"}).status_code == 303

    world.admin.add_member("proj-b", "rita", "viewer")  # a membership that came later
    rita = world.as_("rita").get(f"/proposals/{pid}")
    assert 'id="coi-mine"' in rita.text
    assert "the facility will refuse your review" in rita.text
    assert 'id="coi-assigned"' in admin.get(f"/proposals/{pid}").text
    refused = world.as_("rita").post(
        f"/proposals/{pid}/reviews", {"score": "4", "comment": "Fine.", "no_conflict": "yes"}
    )
    assert refused.status_code == 409
    assert "conflict of interest" in refused.text


def test_a_review_then_an_award_through_the_forms_makes_the_allocation(world: World) -> None:
    pid = world.propose()
    world.admin.assign_reviewer(pid, "rita")
    rita = world.as_("rita")
    rita.get(f"/proposals/{pid}")
    review = {"score": "4", "comment": "Sound plan."}
    undeclared = rita.post(f"/proposals/{pid}/reviews", review)
    assert undeclared.status_code == 422
    assert 'id="no_conflict-error">declare that you have no conflict of interest' in undeclared.text
    assert world.admin.proposal(pid)["reviews"][0]["score"] is None, "nothing was saved"
    declared = rita.post(f"/proposals/{pid}/reviews", {**review, "no_conflict": "yes"})
    assert declared.status_code == 303

    admin = world.as_("admin")
    page = admin.get(f"/proposals/{pid}")
    assert "Mean score 4.0 of 5" in page.text
    assert "Sound plan." in page.text
    backwards = {"gpu_hours": "250", "valid_from": "2030-01-10", "valid_to": "2030-01-01"}
    refused = admin.post(f"/proposals/{pid}/award", backwards)
    assert refused.status_code == 422
    assert 'id="valid_to-error">the allocation must end after it starts' in refused.text
    until = (NOW + 180 * DAY).strftime("%Y-%m-%d")
    award = {"gpu_hours": "250", "valid_from": NOW.strftime("%Y-%m-%d"), "valid_to": until}
    awarded = admin.post(f"/proposals/{pid}/award", {**award, "quota_gpus": "2"})
    assert awarded.status_code == 303, awarded.text

    (allocation,) = world.admin.allocations(project="proj-a")
    assert (allocation["name"], allocation["proposal_id"]) == ("proj-a-r1", pid)
    assert (allocation["award_gpu_hours"], allocation["quota_gpus"]) == (250.0, 2)
    shown = world.as_("owen").get(f"/proposals/{pid}")
    assert 'id="allocation">proj-a-r1</a>' in shown.text
    assert 'class="state state-awarded"' in shown.text
    assert "Sound plan." in shown.text, "applicants read finished reviews"
    assert "rita" not in shown.text, "but not who wrote them"


def test_an_admin_opens_a_call_and_rejects_with_a_reason(world: World) -> None:
    admin = world.as_("admin")
    page = admin.get("/proposals")
    assert "Open a call" in page.text
    call = {
        "name": "r2",
        "programme": "research",
        "title": "Research call 2",
        "opens_at": NOW.strftime("%Y-%m-%d"),
        "closes_at": (NOW + 10 * DAY).strftime("%Y-%m-%d"),
        "budget_gpu_hours": "0",
    }
    refused = admin.post("/proposals/calls", call)
    assert refused.status_code == 422
    assert 'id="budget_gpu_hours-error">must be above 0' in refused.text
    assert admin.post("/proposals/calls", {**call, "budget_gpu_hours": "500"}).status_code == 303
    assert [c["name"] for c in world.admin.calls()] == ["r1", "r2"]

    pid = world.propose()
    no_reason = admin.post(f"/proposals/{pid}/reject", {"note": " "})
    assert no_reason.status_code == 422
    assert "say why the proposal is rejected" in no_reason.text
    assert admin.post(f"/proposals/{pid}/reject", {"note": "Out of scope."}).status_code == 303
    assert world.admin.proposal(pid)["state"] == "rejected"


def test_a_playground_call_opened_in_the_form_awards_at_once_and_shows_when_due(
    world: World,
) -> None:
    admin = world.as_("admin")
    admin.get("/proposals")
    call = {
        "name": "pg",
        "programme": "research",
        "title": "Playground",
        "opens_at": NOW.strftime("%Y-%m-%d"),
        "closes_at": (NOW + 10 * DAY).strftime("%Y-%m-%d"),
        "budget_gpu_hours": "500",
        "access_mode": "playground",
        "funding": "eu",
    }
    no_ceiling = admin.post("/proposals/calls", call)
    assert no_ceiling.status_code == 422
    assert 'id="ceiling_gpu_hours-error">a playground call needs a per-proposal ceiling' in (
        no_ceiling.text
    )
    assert admin.post("/proposals/calls", {**call, "ceiling_gpu_hours": "200"}).status_code == 303
    listing = admin.get("/proposals")
    assert "playground · EU" in listing.text
    assert "at most 200 GPU-h each" in listing.text

    owen = world.as_("owen")
    owen.get("/proposals/new")
    asked = {**APPLICATION, "call": "pg", "requested_gpu_hours": "150", "requested_days": "30"}
    sent = owen.post("/proposals/new", asked)
    assert sent.status_code == 303, sent.text
    page = owen.get(sent.headers["location"])
    assert 'class="state state-awarded"' in page.text
    assert 'id="mode">playground<' in page.text
    assert 'id="allocation">proj-a-pg<' in page.text
    (stored,) = world.admin.proposals()
    assert stored["late"] is False
    due = due_day(datetime.fromisoformat(stored["deadline"]).timestamp()).isoformat()
    assert f'class="due">{due}<' in owen.get("/proposals").text
