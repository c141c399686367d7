"""Programmes, calls, proposals and allocations through the real API: the path from a call to
an allocation with its ledger, the refusals (status and field), and who sees what.

The world is tests.api.conftest's `tenants` (organisation acme, a university: proj-a with owen,
alice and vera; proj-b with admin and bob), plus reviewers rita (no project) and rex (a
viewer of proj-b, so he belongs to acme), fiona (finance), a startup `spark` with proj-s
(carol), and call `r1` under the bootstrap's `research` programme (starter: 100 GPU-h).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.helpers import Tenants, assert_error, check_all
from tests.conftest import LiveServer

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
PROPOSAL: dict[str, Any] = {
    "call": "r1",
    "project": "proj-a",
    "title": "Protein folding",
    "abstract": "We fold proteins.",
    "justification": "Eight GPUs for a month.",
    "requested_gpu_hours": 300.0,
    "gpu_model": "h100",
    "planned_datasets": ["pdb"],
}
HPC: dict[str, Any] = {
    "name": "hpc",
    "title": "HPC pilots",
    "eligible_kinds": ["university"],
    "gpu_tariffs": {"h100": "3.1", "*": 2},
    "cpu_tariff": "0.0125",
    "capacity_share": 0.05,
}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def close_to(text: str, moment: datetime) -> bool:
    return abs(datetime.fromisoformat(text) - moment) < timedelta(milliseconds=1)


def award_body(**change: Any) -> dict[str, Any]:
    return {
        "gpu_hours": 250.0,
        "valid_from": iso(NOW),
        "valid_to": iso(NOW + 180 * DAY),
        "quota_gpus": 4,
        **change,
    }


@dataclass
class World:
    api: httpx.Client
    tenants: Tenants

    def h(self, name: str) -> dict[str, str]:
        return self.tenants.headers(name)

    def get(self, path: str, user: str = "admin", **params: Any) -> Any:
        response = self.api.get(path, headers=self.h(user), params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None, user: str = "admin") -> httpx.Response:
        return self.api.post(path, json=body, headers=self.h(user))

    def ok(self, path: str, body: dict[str, Any] | None, user: str = "admin") -> Any:
        response = self.post(path, body, user)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def propose(self, user: str = "owen", **change: Any) -> Any:
        return self.ok("/proposals", {**PROPOSAL, **change}, user)


@pytest.fixture
def world(tenants: Tenants, api: httpx.Client, live_server: LiveServer) -> World:
    admin = tenants.admin
    tenants.tokens["admin"] = live_server.admin_token
    for name, role in {"rita": "reviewer", "rex": "reviewer", "fiona": "finance"}.items():
        tenants.tokens[name] = admin.create_user(name, facility_role=role)["token"]
    admin.add_member("proj-b", "rex", "viewer")
    admin.create_organisation("spark", "startup")
    admin.create_project("proj-s", "spark", owner="carol")
    w = World(api, tenants)
    w.ok(
        "/calls",
        {
            "name": "r1",
            "programme": "research",
            "title": "Research call 1",
            "opens_at": iso(NOW - DAY),
            "closes_at": (NOW + 30 * DAY).replace(tzinfo=None).isoformat(),  # naive: UTC
            "budget_gpu_hours": 1000,
        },
    )
    return w


def test_from_call_to_allocation_with_its_award_entry(world: World) -> None:
    (call,) = world.get("/calls", "alice")
    assert call["open"] is True
    assert close_to(call["closes_at"], NOW + 30 * DAY)  # the naive moment was read as UTC
    assert (call["budget_gpu_hours"], call["awarded_gpu_hours"]) == (1000.0, 0.0)

    proposal = world.propose()
    pid = proposal["id"]
    assert (proposal["state"], proposal["project"], proposal["programme"]) == (
        "submitted",
        "proj-a",
        "research",
    )
    assigned = world.ok(f"/proposals/{pid}/reviewers", {"reviewer": "rita"})
    assert [r["reviewer"] for r in assigned["reviews"]] == ["rita"]
    reviewed = world.ok(f"/proposals/{pid}/reviews", {"score": 4, "comment": "Sound."}, "rita")
    assert [(r["reviewer"], r["score"]) for r in reviewed["reviews"]] == [("rita", 4)]
    seen_by_owen = world.get(f"/proposals/{pid}", "owen")["reviews"]
    assert [(r["reviewer"], r["score"], r["comment"]) for r in seen_by_owen] == [
        (None, 4, "Sound.")
    ]

    response = world.post(f"/proposals/{pid}/award", award_body())
    assert response.status_code == 201, response.text
    allocation = response.json()
    assert (allocation["name"], allocation["project"], allocation["proposal_id"]) == (
        "proj-a-r1",
        "proj-a",
        pid,
    )
    assert (allocation["award_gpu_hours"], allocation["left_gpu_hours"]) == (250.0, 250.0)
    assert (allocation["quota_gpus"], allocation["gpu_model"], allocation["active"]) == (
        4,
        "h100",
        True,
    )
    (entry,) = world.get("/allocations/proj-a-r1/ledger", "vera")
    assert (entry["kind"], entry["gpu_hours"], entry["actor"], entry["cost"]) == (
        "award",
        250.0,
        "admin",
        "0.00",
    )
    assert entry["reason"] == f"awarded from proposal {pid}"
    assert world.get(f"/proposals/{pid}", "owen")["allocation"] == "proj-a-r1"
    assert world.get("/proposals", "owen")[0]["state"] == "awarded"
    (call,) = world.get("/calls", "bob")
    assert (call["awarded_gpu_hours"], call["left_gpu_hours"]) == (250.0, 750.0)
    names = [a["name"] for a in world.get("/allocations", "owen")]
    assert names == ["proj-a-r1"]


def test_refusals_name_their_status_and_field(world: World) -> None:
    pid = world.propose()["id"]
    other = world.propose(project="proj-b", user="bob", requested_gpu_hours=900)["id"]
    world.ok(f"/proposals/{other}/award", award_body(gpu_hours=900))
    closed = {
        "name": "r0",
        "programme": "research",
        "title": "Last year",
        "opens_at": iso(NOW - 100 * DAY),
        "closes_at": iso(NOW - DAY),
        "budget_gpu_hours": 10,
    }
    world.ok("/calls", closed)
    grant = {
        "project": "proj-b",
        "programme": "research",
        "gpu_hours": 10,
        "valid_from": iso(NOW),
        "valid_to": iso(NOW + DAY),
        "reason": "pilot",
    }
    check_all(
        [
            (
                "conflict of interest",
                world.post(f"/proposals/{pid}/reviewers", {"reviewer": "rex"}),
                409,
                "reviewer",
            ),
            ("over budget", world.post(f"/proposals/{pid}/award", award_body()), 422, "gpu_hours"),
            (
                "inverted award",
                world.post(
                    f"/proposals/{pid}/award", award_body(gpu_hours=1, valid_to=iso(NOW - DAY))
                ),
                422,
                "valid_to",
            ),
            (
                "inverted call",
                world.post("/calls", {**closed, "name": "r9", "closes_at": iso(NOW - 200 * DAY)}),
                422,
                "closes_at",
            ),
            ("overlapping", world.post("/allocations", grant), 422, "valid_from"),
            (
                "ineligible",
                world.post("/proposals", {**PROPOSAL, "project": "proj-s"}, "carol"),
                422,
                "project",
            ),
            (
                "closed call",
                world.post("/proposals", {**PROPOSAL, "call": "r0"}, "owen"),
                422,
                "call",
            ),
            (
                "unknown call",
                world.post("/proposals", {**PROPOSAL, "call": "r7"}, "owen"),
                404,
                "call",
            ),
            ("a viewer", world.post("/proposals", PROPOSAL, "vera"), 403, None),
            ("bad score", world.post(f"/proposals/{pid}/reviews", {"score": 1.5}), 422, "score"),
            ("bad date", world.post("/calls", {**closed, "opens_at": "soon"}), 422, "opens_at"),
        ]
    )
    body = assert_error(world.post(f"/proposals/{pid}/award", award_body()), 422)
    assert body["message"] == "call r1 has 100 GPU-h left"
    coi = assert_error(world.post(f"/proposals/{pid}/reviewers", {"reviewer": "rex"}), 409)
    assert coi["message"] == (
        "reviewer rex belongs to organisation acme, the applicant's: conflict of interest"
    )
    ineligible = world.post("/proposals", {**PROPOSAL, "project": "proj-s"}, "carol")
    assert_error(ineligible, 422, "project", reason="a startup organisation")
    for user in ["owen", "rita", "fiona", "olga"]:
        assert_error(
            world.post(f"/proposals/{pid}/award", award_body(gpu_hours=1), user),
            403,
            reason="admin",
        )
    assert world.get(f"/proposals/{pid}")["state"] == "submitted"


def test_programmes_show_prices_as_text_and_refuse_bad_tariffs(world: World) -> None:
    listed = {p["name"]: p for p in world.get("/programmes", "carol")}
    assert list(listed) == ["research", "startup", "sme", "government", "commercial"]
    research = listed["research"]
    assert (research["gpu_tariffs"], research["cpu_tariff"]) == ({"*": "2.50"}, "0.02")
    assert (research["starter_gpu_hours"], research["eligible_kinds"]) == (
        100.0,
        ["university", "research_institute"],
    )

    commercial = {k: v for k, v in listed["commercial"].items() if k not in ("name", "created_at")}
    put = world.api.put(
        "/programmes/commercial",
        json={**commercial, "capacity_share": 0.1},
        headers=world.h("admin"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["gpu_tariffs"] == {"*": "3.20"}
    created = world.ok("/programmes", HPC)
    assert (created["gpu_tariffs"], created["cpu_tariff"]) == (
        {"h100": "3.10", "*": "2.00"},
        "0.0125",
    )

    check_all(
        [
            (label, world.post("/programmes", {**HPC, "name": "x", **change}), 422, field)
            for label, change, field in [
                ("negative tariff", {"gpu_tariffs": {"*": "-1"}}, "gpu_tariffs"),
                ("absurd tariff", {"gpu_tariffs": {"h100": "25000"}}, "gpu_tariffs"),
                ("not a price", {"gpu_tariffs": {"*": "cheap"}}, "gpu_tariffs.*"),
                ("negative CPU", {"cpu_tariff": "-0.5"}, "cpu_tariff"),
                ("no room", {"capacity_share": 0.01}, "capacity_share"),
                ("no kinds", {"eligible_kinds": []}, "eligible_kinds"),
                ("unknown kind", {"eligible_kinds": ["charity"]}, "eligible_kinds.0"),
                ("subsidy", {"subsidy_pct": 101}, "subsidy_pct"),
                ("share as text", {"capacity_share": "0.1"}, "capacity_share"),
            ]
        ]
        + [
            ("not admin", world.post("/programmes", HPC, "fiona"), 403, None),
            (
                "zero share",
                world.post("/programmes", {**HPC, "capacity_share": 0}),
                422,
                "capacity_share",
            ),
            (
                "taken",
                world.post("/programmes", {**HPC, "name": "research", "capacity_share": 0.01}),
                409,
                "name",
            ),
        ]
    )
    assert [p["name"] for p in world.get("/programmes")][-1] == "hpc"


def test_a_small_first_request_is_awarded_at_once(world: World) -> None:
    proposal = world.propose(requested_gpu_hours=80, gpu_model=None)
    assert (proposal["state"], proposal["allocation"]) == ("awarded", "proj-a-r1")
    assert proposal["decision_note"] == "auto-approved starter allocation"
    (allocation,) = world.get("/allocations", "alice", project="proj-a")
    valid_from = datetime.fromisoformat(allocation["valid_from"])
    assert close_to(allocation["valid_to"], valid_from + 90 * DAY)
    assert (allocation["created_by"], allocation["left_gpu_hours"]) == ("auto", 80.0)


def test_tenants_see_only_their_own_finance_sees_every_allocation(world: World) -> None:
    pid = world.propose()["id"]
    world.ok(f"/proposals/{pid}/award", award_body())
    mine = world.propose(project="proj-b", user="bob", requested_gpu_hours=500)["id"]
    h = world.h("bob")
    check_all(
        [
            ("show", world.api.get(f"/proposals/{pid}", headers=h), 404, "proposal_id"),
            (
                "withdraw",
                world.api.post(f"/proposals/{pid}/withdraw", headers=h),
                404,
                "proposal_id",
            ),
            ("list", world.api.get("/allocations?project=proj-a", headers=h), 404, "project"),
            (
                "ledger",
                world.api.get("/allocations/proj-a-r1/ledger", headers=h),
                404,
                "allocation",
            ),
            (
                "adjust",
                world.post("/allocations/proj-a-r1/adjust", {"gpu_hours": 5, "reason": "x"}, "bob"),
                403,
                None,
            ),
            (
                "withdraw as a member, not an owner",
                world.api.post(f"/proposals/{pid}/withdraw", headers=world.h("alice")),
                403,
                None,
            ),
        ]
    )
    assert [p["id"] for p in world.get("/proposals", "bob")] == [mine]
    assert [a["name"] for a in world.get("/allocations", "bob")] == []
    everything = ["default-starter", "proj-a-r1"]
    for user in ["admin", "fiona", "olga"]:
        assert [a["name"] for a in world.get("/allocations", user)] == everything, user

    adjusted = world.ok("/allocations/proj-a-r1/adjust", {"gpu_hours": -50, "reason": "x"}, "fiona")
    assert (adjusted["adjusted_gpu_hours"], adjusted["left_gpu_hours"]) == (-50.0, 200.0)
    too_much = world.post("/allocations/proj-a-r1/adjust", {"gpu_hours": -201, "reason": "x"})
    assert_error(too_much, 422, "gpu_hours", reason="200 GPU-h left")
    entries = world.get("/allocations/proj-a-r1/ledger", "fiona")
    assert [(e["kind"], e["gpu_hours"], e["actor"]) for e in entries] == [
        ("award", 250.0, "admin"),
        ("adjust", -50.0, "fiona"),
    ]
    withdrawn = world.ok(f"/proposals/{mine}/withdraw", None, "admin")
    assert withdrawn["state"] == "withdrawn"
