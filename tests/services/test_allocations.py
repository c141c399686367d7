"""Allocations: direct grants within the rules, signed adjustments in the ledger, balances and
alerts in the listing, and who may see which allocation and ledger."""

from __future__ import annotations

from typing import Any

import pytest

from aifactory.accounting import ledger
from aifactory.accounting.budget import raise_alerts
from aifactory.domain.ledger import EntryKind
from aifactory.errors import InvalidInput, NotFound, PermissionDenied
from aifactory.services.allocations import (
    AllocationView,
    adjust_allocation,
    allocation_ledger,
    create_allocation,
    list_allocations,
)
from aifactory.store.db import Database
from tests.services.accounting_world import DAY, T0, H, build_world, who

MS = 1000  # the ledger counts GPU-milliseconds

NOW = T0 + 3600.0


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def grant(db: Database, user: str = "admin", **change: Any) -> AllocationView:
    fields: dict[str, Any] = {
        "project": "shop",
        "programme": "commercial",
        "gpu_hours": 100.0,
        "valid_from": NOW,
        "valid_to": NOW + 30 * DAY,
        "quota_gpus": 2,
        "gpu_model": "h100",
        "reason": "contract 2026-17",
        **change,
    }
    with db.session() as s:
        return create_allocation(s, who(s, user), now=NOW, **fields)


def adjust(db: Database, allocation: str, hours: float, user: str = "fiona") -> AllocationView:
    with db.session() as s:
        return adjust_allocation(
            s, who(s, user), allocation=allocation, gpu_hours=hours, reason="correction", now=NOW
        )


def test_a_direct_grant_is_an_allocation_with_its_award_entry(world: Database) -> None:
    view = grant(world)
    a = view.allocation
    assert (a.name, view.project, view.programme, a.proposal_id) == (
        "shop-commercial",
        "shop",
        "commercial",
        None,
    )
    assert (a.award_gpu_s, a.quota_gpus, a.gpu_model, a.created_by) == (100 * H, 2, "h100", "admin")
    assert (view.active, view.balance.left, view.alerts) == (True, 100 * H, ())
    with world.read() as s:
        (entry,) = ledger.entries_of(s, a.id)
    assert (entry.kind, entry.gpu_s, entry.key) == ("award", 100 * H, f"award:{a.id}")
    assert (entry.actor, entry.reason) == ("admin", "contract 2026-17")

    # The next one, after the first ends, takes the next free name.
    after = grant(world, valid_from=NOW + 30 * DAY, valid_to=NOW + 60 * DAY)
    assert (after.allocation.name, after.active) == ("shop-commercial-2", False)


def test_dates_must_not_be_inverted_nor_overlap_the_same_programme(world: Database) -> None:
    for change in [{"valid_to": NOW}, {"valid_to": NOW - DAY}]:
        with pytest.raises(InvalidInput) as inverted:
            grant(world, **change)
        assert inverted.value.field == "valid_to"
    grant(world)
    with pytest.raises(InvalidInput) as overlapping:
        grant(world, valid_from=NOW + 29 * DAY, valid_to=NOW + 40 * DAY)
    assert overlapping.value.field == "valid_from"
    assert "shop-commercial" in overlapping.value.message
    # Under another programme, or right after the first one ends, it is fine.
    assert grant(world, programme="startup").allocation.name == "shop-startup"
    grant(world, valid_from=NOW + 30 * DAY, valid_to=NOW + 40 * DAY)


def test_a_grant_checks_eligibility_amount_quota_reason_and_who_asks(world: Database) -> None:
    with pytest.raises(InvalidInput) as ineligible:
        grant(world, programme="research")
    assert ineligible.value.field == "project"
    assert "shop belongs to spark, a startup organisation" in ineligible.value.message
    for change, field in [
        ({"gpu_hours": 0.0}, "gpu_hours"),
        ({"gpu_hours": 10.0**9}, "gpu_hours"),  # more than the store can hold
        ({"quota_gpus": -2}, "quota_gpus"),
        ({"reason": " "}, "reason"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            grant(world, **change)
        assert refused.value.field == field, change
    for change, field in [({"project": "nope"}, "project"), ({"programme": "nope"}, "programme")]:
        with pytest.raises(NotFound) as missing:
            grant(world, **change)
        assert missing.value.field == field
    for name in ["bob", "fiona", "olga", "rita"]:
        with pytest.raises(PermissionDenied):
            grant(world, user=name)
    with world.read() as s:
        assert [v.allocation.name for v in list_allocations(s, who(s, "admin"), now=NOW)] == [
            "default-starter"
        ]


def test_adjustments_are_signed_ledger_entries_that_never_go_below_zero(world: Database) -> None:
    name = grant(world).allocation.name
    assert adjust(world, name, 10.0).balance.left == 110 * H
    assert adjust(world, name, -30.5, user="admin").balance.adjusted == round(-20.5 * H)
    with pytest.raises(InvalidInput) as negative:
        adjust(world, name, -80.0)
    assert negative.value.field == "gpu_hours"
    assert "79.5 GPU-h left" in negative.value.message
    for hours in (0.0, 0.0001, float("nan")):
        with pytest.raises(InvalidInput) as zero:
            adjust(world, name, hours)
        assert zero.value.field == "gpu_hours"
    with world.session() as s, pytest.raises(InvalidInput) as no_reason:
        adjust_allocation(s, who(s, "admin"), allocation=name, gpu_hours=1, reason="", now=NOW)
    assert no_reason.value.field == "reason"
    for user in ["bob", "olga"]:
        with pytest.raises(PermissionDenied):
            adjust(world, name, 1.0, user=user)
    with pytest.raises(NotFound) as missing:
        adjust(world, "nope", 1.0)
    assert missing.value.field == "allocation"
    assert adjust(world, name, -79.5).balance.left == 0

    with world.read() as s:
        entries = allocation_ledger(s, who(s, "bob"), allocation=name)
    assert [(e.kind, e.gpu_ms, e.key, e.actor) for e in entries] == [
        ("award", 100 * H * MS, f"award:{entries[0].allocation_id}", "admin"),
        ("adjust", 10 * H * MS, f"adjust:{entries[0].allocation_id}:1", "fiona"),
        ("adjust", round(-30.5 * H) * MS, f"adjust:{entries[0].allocation_id}:2", "admin"),
        ("adjust", round(-79.5 * H) * MS, f"adjust:{entries[0].allocation_id}:3", "fiona"),
    ]
    assert all(e.reason == "correction" for e in entries[1:])


def test_the_listing_shows_balances_windows_and_alerts(world: Database) -> None:
    view = grant(world, gpu_hours=10.0)
    aid = view.allocation.id
    with world.session() as s:  # as the control loop would: 9 GPU-h reserved, 2 settled
        common: dict[str, Any] = {"allocation_id": aid, "at": NOW, "actor": "control"}
        ledger.post(s, kind=EntryKind.RESERVE, gpu_ms=-9 * H * MS, key="r", reason="r", **common)
        ledger.post(s, kind=EntryKind.SETTLE, gpu_ms=-2 * H * MS, key="s", reason="s", **common)
        ledger.post(s, kind=EntryKind.RESERVE, gpu_ms=-3 * H * MS, key="r2", reason="r", **common)
        ledger.post(s, kind=EntryKind.RELEASE, gpu_ms=3 * H * MS, key="x2", reason="x", **common)
        raise_alerts(s, aid, now=NOW)
    with world.read() as s:
        (listed,) = list_allocations(s, who(s, "bob"), now=NOW + 31 * DAY)
    b = listed.balance
    assert (b.awarded_ms, b.adjusted_ms, b.settled_ms, b.reserved_ms, b.left_ms) == (
        10 * H * MS,
        0,
        2 * H * MS,
        9 * H * MS,
        -H * MS,
    )
    assert listed.active is False  # 31 days on, it has ended
    assert [a.threshold for a in listed.alerts] == [80, 100]


def test_finance_operators_and_admins_see_every_allocation_members_their_own(
    world: Database,
) -> None:
    grant(world)
    with world.session() as s:
        create_allocation(
            s,
            who(s, "admin"),
            project="lab",
            programme="research",
            gpu_hours=5.0,
            valid_from=NOW,
            valid_to=NOW + DAY,
            reason="pilot",
            now=NOW,
        )
    everything = ["default-starter", "shop-commercial", "lab-research"]
    with world.read() as s:

        def names(user: str, project: str | None = None) -> list[str]:
            found = list_allocations(s, who(s, user), project=project, now=NOW)
            return [v.allocation.name for v in found]

        for user in ["admin", "fiona", "olga"]:
            assert names(user) == everything, user
        assert names("fiona", project="lab") == ["lab-research"]
        assert names("owen") == names("vera") == ["lab-research"]
        assert names("bob") == ["shop-commercial"]
        assert names("rita") == []
        with pytest.raises(NotFound) as hidden:
            names("bob", project="lab")
        assert hidden.value.field == "project"
        with pytest.raises(NotFound) as unknown:
            names("fiona", project="nope")
        assert unknown.value.field == "project"

        assert len(allocation_ledger(s, who(s, "fiona"), allocation="lab-research")) == 1
        assert len(allocation_ledger(s, who(s, "vera"), allocation="lab-research")) == 1
        for user in ["bob", "rita"]:
            with pytest.raises(NotFound) as not_theirs:
                allocation_ledger(s, who(s, user), allocation="lab-research")
            assert not_theirs.value.message == (
                "no allocation named 'lab-research' that you can see"
            )
