"""Programmes and calls: admins define them within the rules, everyone reads them."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from aifactory.domain.tenancy import OrgKind
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.services.programmes import (
    ProgrammeSpec,
    create_call,
    create_programme,
    list_calls,
    list_programmes,
    update_programme,
)
from aifactory.store.db import Database
from aifactory.store.models import Programme
from tests.services.accounting_world import DAY, T0, build_world, who

HPC = ProgrammeSpec(
    title="HPC pilots",
    eligible_kinds=(OrgKind.UNIVERSITY, OrgKind.GOVERNMENT),
    gpu_tariffs={"h100": Decimal("3.10"), "*": Decimal("2")},
    capacity_share=0.1,
    cpu_tariff=Decimal("0.0125"),
    subsidy_pct=40,
    priority_weight=-20,
    preemptible_default=True,
    max_gpus_per_job=64,
    starter_gpu_hours=10.0,
    starter_days=14,
)


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    with db.session() as s:  # make room: the bootstrap's shares sum to the whole facility
        commercial = next(p for p in list_programmes(s, who(s, "admin")) if p.name == "commercial")
        spec = replace(_spec_of(commercial), capacity_share=0.05)
        update_programme(s, who(s, "admin"), name="commercial", spec=spec, now=T0)
    return db


def _spec_of(p: Programme) -> ProgrammeSpec:
    return ProgrammeSpec(
        title=p.title,
        eligible_kinds=tuple(OrgKind(k) for k in p.eligible_kinds),
        gpu_tariffs={m: Decimal(v) for m, v in p.gpu_tariffs.items()},
        capacity_share=p.capacity_share,
        cpu_tariff=Decimal(p.cpu_tariff),
    )


def test_an_admin_creates_a_programme_everyone_sees_with_prices_as_decimal_text(
    world: Database,
) -> None:
    with world.session() as s:
        created = create_programme(s, who(s, "admin"), name="hpc", spec=HPC, now=T0)
    assert created.gpu_tariffs == {"h100": "3.10", "*": "2.00"}
    assert created.cpu_tariff == "0.0125"

    with world.read() as s:
        seen = {p.name: p for p in list_programmes(s, who(s, "vera"))}
    assert set(seen) == {"research", "startup", "sme", "government", "commercial", "hpc"}
    hpc = seen["hpc"]
    assert hpc.eligible_kinds == ["university", "government"]
    assert (hpc.subsidy_pct, hpc.priority_weight, hpc.max_gpus_per_job) == (40, -20, 64)
    assert (hpc.preemptible_default, hpc.capacity_share) == (True, 0.1)
    assert (hpc.starter_gpu_hours, hpc.starter_days, hpc.created_at) == (10.0, 14, T0)


def test_an_update_replaces_everything_but_the_name(world: Database) -> None:
    with world.session() as s:
        create_programme(s, who(s, "admin"), name="hpc", spec=HPC, now=T0)
    cheaper = replace(
        HPC,
        title="HPC",
        gpu_tariffs={"*": Decimal("1.5E+0"), "a100": Decimal("1E+2"), "l4": Decimal("0.700000000")},
        cpu_tariff=Decimal("-0"),
        max_gpus_per_job=None,
    )
    with world.session() as s:
        updated = update_programme(s, who(s, "admin"), name="hpc", spec=cheaper, now=T0)
        assert (updated.name, updated.title, updated.created_at) == ("hpc", "HPC", T0)
        assert updated.gpu_tariffs == {"*": "1.50", "a100": "100.00", "l4": "0.70"}
        assert updated.cpu_tariff == "0.00"
        assert updated.max_gpus_per_job is None
        with pytest.raises(NotFound) as missing:
            update_programme(s, who(s, "admin"), name="nope", spec=HPC, now=T0)
    assert missing.value.field == "programme"


@pytest.mark.parametrize("name", ["owen", "fiona", "olga", "rita"])
def test_only_admins_create_or_change_programmes_and_calls(world: Database, name: str) -> None:
    with world.session() as s:
        user = who(s, name)
        with pytest.raises(PermissionDenied):
            create_programme(s, user, name="rogue", spec=HPC, now=T0)
        with pytest.raises(PermissionDenied):
            update_programme(s, user, name="research", spec=HPC, now=T0)
        with pytest.raises(PermissionDenied):
            create_call(
                s,
                user,
                name="c",
                programme="research",
                title="t",
                opens_at=T0,
                closes_at=T0 + DAY,
                budget_gpu_hours=1.0,
                now=T0,
            )


def test_capacity_shares_never_sum_above_the_whole_facility(world: Database) -> None:
    # The bootstrap's five programmes hold 0.9 now (commercial went down to 0.05).
    with world.session() as s:
        admin = who(s, "admin")
        with pytest.raises(InvalidInput) as refused:
            create_programme(s, admin, name="big", spec=replace(HPC, capacity_share=0.11), now=T0)
        assert refused.value.field == "capacity_share"
        assert "at most 0.1 is left" in refused.value.message
        create_programme(s, admin, name="hpc", spec=replace(HPC, capacity_share=0.1), now=T0)
        # An update does not count the programme's own old share against it.
        update_programme(s, admin, name="hpc", spec=replace(HPC, capacity_share=0.1), now=T0)
        with pytest.raises(InvalidInput) as grown:
            update_programme(s, admin, name="hpc", spec=replace(HPC, capacity_share=0.101), now=T0)
        assert grown.value.field == "capacity_share"


BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("negative GPU price", {"gpu_tariffs": {"*": Decimal("-1")}}, "gpu_tariffs"),
    ("absurd GPU price", {"gpu_tariffs": {"h100": Decimal("1000000")}}, "gpu_tariffs"),
    ("NaN GPU price", {"gpu_tariffs": {"*": Decimal("NaN")}}, "gpu_tariffs"),
    ("infinite GPU price", {"gpu_tariffs": {"*": Decimal("Infinity")}}, "gpu_tariffs"),
    ("too fine a price", {"gpu_tariffs": {"*": Decimal("1E-9")}}, "gpu_tariffs"),
    ("empty model", {"gpu_tariffs": {" ": Decimal(1)}}, "gpu_tariffs"),
    ("negative CPU price", {"cpu_tariff": Decimal("-0.01")}, "cpu_tariff"),
    ("absurd CPU price", {"cpu_tariff": Decimal("5000")}, "cpu_tariff"),
    ("blank title", {"title": "  "}, "title"),
    ("no kinds", {"eligible_kinds": ()}, "eligible_kinds"),
    ("subsidy over 100", {"subsidy_pct": 101}, "subsidy_pct"),
    ("negative subsidy", {"subsidy_pct": -1}, "subsidy_pct"),
    ("weight too high", {"priority_weight": 1001}, "priority_weight"),
    ("weight too low", {"priority_weight": -1001}, "priority_weight"),
    ("no GPUs per job", {"max_gpus_per_job": 0}, "max_gpus_per_job"),
    ("zero share", {"capacity_share": 0.0}, "capacity_share"),
    ("share above 1", {"capacity_share": 1.5}, "capacity_share"),
    ("NaN share", {"capacity_share": math.nan}, "capacity_share"),
    ("negative starter", {"starter_gpu_hours": -1.0}, "starter_gpu_hours"),
    ("infinite starter", {"starter_gpu_hours": math.inf}, "starter_gpu_hours"),
    ("no starter days", {"starter_days": 0}, "starter_days"),
]


@pytest.mark.parametrize(("label", "change", "field"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_a_bad_programme_is_refused_naming_the_field(
    world: Database, label: str, change: dict[str, Any], field: str
) -> None:
    with world.session() as s, pytest.raises(InvalidInput) as refused:
        create_programme(s, who(s, "admin"), name="hpc", spec=replace(HPC, **change), now=T0)
    assert refused.value.field == field, label
    with world.read() as s:
        assert "hpc" not in [p.name for p in list_programmes(s, who(s, "admin"))]


def test_a_programme_name_is_taken_once(world: Database) -> None:
    with world.session() as s, pytest.raises(Conflict) as taken:
        create_programme(
            s, who(s, "admin"), name="research", spec=replace(HPC, capacity_share=0.01), now=T0
        )
    assert taken.value.field == "name"


def test_calls_have_a_window_and_a_budget_and_say_whether_they_are_open(world: Database) -> None:
    def call(**change: Any) -> None:
        fields: dict[str, Any] = {
            "name": "r2",
            "programme": "research",
            "title": "Round 2",
            "opens_at": T0 + DAY,
            "closes_at": T0 + 10 * DAY,
            "budget_gpu_hours": 500.0,
            **change,
        }
        with world.session() as s:
            create_call(s, who(s, "admin"), now=T0, **fields)

    for change, field in [
        ({"closes_at": T0}, "closes_at"),  # closes before it opens
        ({"closes_at": T0 + DAY}, "closes_at"),  # closes as it opens
        ({"budget_gpu_hours": 0.0}, "budget_gpu_hours"),
        ({"budget_gpu_hours": -5.0}, "budget_gpu_hours"),
        ({"budget_gpu_hours": math.inf}, "budget_gpu_hours"),
        ({"title": " "}, "title"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            call(**change)
        assert refused.value.field == field, change
    with pytest.raises(NotFound) as unknown:
        call(programme="nope")
    assert unknown.value.field == "programme"
    call()
    with pytest.raises(Conflict) as taken:
        call()
    assert taken.value.field == "name"

    with world.read() as s:
        calls = {c.call.name: c for c in list_calls(s, who(s, "bob"), now=T0)}
    assert [(c.programme, c.open_now, c.awarded_gpu_hours) for c in calls.values()] == [
        ("research", True, 0.0),  # r1: opened a day ago
        ("research", False, 0.0),  # r2: opens tomorrow
    ]
    assert calls["r2"].left_gpu_hours == 500.0
    with world.read() as s:
        later = {c.call.name: c.open_now for c in list_calls(s, who(s, "bob"), now=T0 + 10 * DAY)}
    assert later == {"r1": True, "r2": False}  # r2 closed at that very moment
