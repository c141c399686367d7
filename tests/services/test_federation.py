"""Award imports from an upstream portal and the usage returned to it, on a real database:
imported twice is one allocation, a changed award updates it (audited), a bad file imports
nothing, and the usage exported for an award is what its ledger settled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.ledger import EntryKind
from aifactory.domain.tenancy import FacilityRole
from aifactory.errors import InvalidInput, PermissionDenied
from aifactory.services.auth import principal_of
from aifactory.services.federation import ImportReport, import_awards
from aifactory.services.federation_usage import export_usage, usage_csv
from aifactory.services.principal import Principal
from aifactory.services.tenancy import create_user, user_by_name
from aifactory.store.db import Database
from aifactory.store.models import (
    Allocation,
    AuditEvent,
    FederationImport,
    LedgerEntry,
    Member,
    User,
    UserIdentity,
)
from tests.conftest import seed_facility
from tests.domain.test_federation import RECORD, as_csv, at
from tests.services.money_rows import Metered, a_job, run_attempt

NOW = at("2026-01-02")
JAN, FEB, MAR = at("2026-01-01"), at("2026-02-01"), at("2026-03-01")
H = 3600.0


def who(session: Session, name: str) -> Principal:
    return principal_of(session, user_by_name(session, name))


@pytest.fixture
def world(db: Database) -> Database:
    seed_facility(db, now=NOW - 86400)
    with db.session() as s:
        create_user(
            s,
            who(s, "admin"),
            name="fiona",
            email=None,
            facility_role=FacilityRole.FINANCE,
            now=NOW,
        )
    return db


def imported(
    db: Database, records: list[dict[str, Any]], *, user: str = "admin", dry_run: bool = False
) -> ImportReport:
    with db.session() as s:
        return import_awards(
            s,
            who(s, user),
            content=json.dumps(records),
            fmt="json",
            source="awards.json",
            dry_run=dry_run,
            now=NOW,
        )


def allocations_of(s: Session) -> list[Allocation]:
    return list(s.scalars(select(Allocation).where(Allocation.name != "default-starter")))


def test_an_award_imported_twice_is_one_allocation(world: Database) -> None:
    first = imported(world, [RECORD])
    again = imported(world, [RECORD])

    assert [(r.outcome, r.allocation) for r in first.records] == [
        ("created", "protein-folding-research")
    ]
    assert [r.outcome for r in again.records] == ["unchanged"]
    with world.read() as s:
        (allocation,) = allocations_of(s)
        assert allocation.award_gpu_s == 5000 * 3600
        assert (allocation.valid_from, allocation.valid_to) == (JAN, at("2026-07-01"))
        identity = s.scalars(select(UserIdentity)).one()
        assert (identity.issuer, identity.subject) == (RECORD["pi_issuer"], RECORD["pi_subject"])
        pi = s.get(User, identity.user_id)
        assert pi is not None
        assert (pi.name, pi.password_hash) == ("ada.lovelace", None)
        member = s.get(Member, (allocation.project_id, pi.id))
        assert member is not None
        assert member.role == "owner"
        stored = list(s.scalars(select(FederationImport).order_by(FederationImport.id)))
        assert [(i.created, i.unchanged, i.sha256) for i in stored] == [
            (1, 0, first.sha256),
            (0, 1, first.sha256),
        ]
        audited = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert audited.count("federation.import") == 2
        assert audited.count("allocation.create") == 2  # the bootstrap's starter, and this one


def test_a_pi_whose_identity_is_linked_owns_the_project_as_that_user(world: Database) -> None:
    with world.session() as s:
        create_user(
            s, who(s, "admin"), name="ada", email=None, facility_role=FacilityRole.USER, now=NOW
        )
        ada = user_by_name(s, "ada")
        s.add(
            UserIdentity(
                user_id=ada.id,
                issuer=RECORD["pi_issuer"],
                subject=RECORD["pi_subject"],
                provider="myaccessid",
                created_at=NOW,
                last_sign_in_at=NOW,
            )
        )

    imported(world, [RECORD])

    with world.read() as s:
        (allocation,) = allocations_of(s)
        owner = s.get(Member, (allocation.project_id, user_by_name(s, "ada").id))
        assert owner is not None
        assert owner.role == "owner"
        assert s.scalar(select(func.count(UserIdentity.id))) == 1


def test_a_changed_award_updates_its_allocation_in_the_ledger_and_the_audit_log(
    world: Database,
) -> None:
    imported(world, [RECORD])
    changed = {**RECORD, "gpu_hours": 6000, "end": "2026-09-30"}

    report = imported(world, [changed])

    (outcome,) = report.records
    assert outcome.outcome == "updated"
    assert "GPU-hours 5000 → 6000" in outcome.detail
    with world.read() as s:
        (allocation,) = allocations_of(s)
        assert allocation.valid_to == at("2026-10-01")
        adjust = s.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == EntryKind.ADJUST.value)
        ).one()
        assert (adjust.allocation_id, adjust.gpu_ms) == (allocation.id, 1000 * 3600 * 1000)
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "federation.award.update")
        ).one()
        assert event.object == f"allocation:{allocation.name}"


def test_an_award_lowered_below_its_use_is_refused_and_the_rest_applied(
    world: Database,
) -> None:
    imported(world, [RECORD])
    with world.session() as s:
        (allocation,) = allocations_of(s)
        job = a_job(s, project_id=allocation.project_id, user_id=1, submitted_at=NOW)
        used = Metered(NOW, NOW + 10 * H, 100, 1, 0, 0, 0, 0.0)  # 1000 GPU-hours
        run_attempt(s, job, 1, used, allocation)
    other = {**RECORD, "award_id": "other", "project_id": "p2", "project_name": "p2"}

    report = imported(world, [{**RECORD, "gpu_hours": 999}, other])

    assert [r.outcome for r in report.records] == ["refused", "created"]
    assert "used or reserved 1000 GPU-h" in report.records[0].detail
    with world.read() as s:
        assert s.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "adjust")) == 0
        assert len(allocations_of(s)) == 2


def test_a_bad_record_refuses_the_whole_file(world: Database) -> None:
    bad = {**RECORD, "award_id": "second", "gpu_hours": 0}

    with pytest.raises(InvalidInput) as refused:
        imported(world, [RECORD, bad])

    assert refused.value.field == "records[1].gpu_hours"
    with pytest.raises(InvalidInput) as unknown:
        imported(world, [{**RECORD, "programme": "moonshot"}])
    assert unknown.value.field == "records[0].programme"
    with world.read() as s:
        assert allocations_of(s) == []
        assert s.scalar(select(func.count(FederationImport.id))) == 0
        assert s.scalar(select(func.count(UserIdentity.id))) == 0


def test_a_dry_run_reports_and_keeps_nothing(world: Database) -> None:
    report = imported(world, [RECORD], dry_run=True)

    assert (report.id, [r.outcome for r in report.records]) == (None, ["created"])
    with world.read() as s:
        assert allocations_of(s) == []
        assert s.scalar(select(func.count(FederationImport.id))) == 0


def test_only_admins_import_and_finance_may_export(world: Database) -> None:
    with pytest.raises(PermissionDenied):
        imported(world, [RECORD], user="fiona")
    with world.read() as s:
        export_usage(s, who(s, "fiona"), start=JAN, end=FEB)


def test_usage_exported_per_award_and_month_totals_the_ledger(world: Database) -> None:
    imported(world, [RECORD])
    with world.session() as s:
        (allocation,) = allocations_of(s)
        job = a_job(s, project_id=allocation.project_id, user_id=1, submitted_at=JAN)
        attempts = [
            Metered(JAN + 3 * 86400, JAN + 3 * 86400 + 2 * H, 4, 8, 2000, 32, 0, 1e7),
            Metered(JAN + 9 * 86400, JAN + 9 * 86400 + 1234.567, 1, 1, 86, 1, 0, 1e6),
            Metered(FEB - H / 2, FEB + H / 2, 2, 2, 500, 4, 0, 3e6),  # booked in February
        ]
        for n, used in enumerate(attempts, start=1):
            run_attempt(s, job, n, used, allocation)

    with world.read() as s:
        export = export_usage(s, who(s, "admin"), start=JAN, end=MAR, project="protein-folding")
        settled = -int(
            s.scalar(
                select(func.sum(LedgerEntry.gpu_ms)).where(
                    LedgerEntry.allocation_id == allocation.id,
                    LedgerEntry.kind == EntryKind.SETTLE.value,
                )
            )
            or 0
        )

    assert export.gpu_ms == settled == sum(used.gpu_ms for used in attempts)
    assert [(x.award.award_id, x.month, x.attempts) for x in export.lines] == [
        (RECORD["award_id"], "2026-01", 2),
        (RECORD["award_id"], "2026-02", 1),
    ]
    january = export.lines[0]
    assert january.gpu_ms == attempts[0].gpu_ms + attempts[1].gpu_ms
    assert (january.start, january.end) == (JAN, FEB)
    assert january.subsidy_cents == january.cost_cents  # research: fully subsidised
    assert january.energy_kwh == pytest.approx(11e6 / 3.6e6, abs=1e-6)
    rows = usage_csv(export).splitlines()
    assert rows[0].startswith("award_id,project_id,project,allocation,programme,month")
    assert len(rows) == 3


def test_a_csv_file_imports_as_its_json_twin(world: Database) -> None:
    with world.session() as s:
        report = import_awards(
            s, who(s, "admin"), content=as_csv(RECORD), fmt="csv", source="a.csv", now=NOW
        )
    assert [r.outcome for r in report.records] == ["created"]
    assert [r.outcome for r in imported(world, [RECORD]).records] == ["unchanged"]
