"""Usage, invoices and funder reports read from the store: exact cents, who sees what, and
invoices issued once per closed month, numbered in sequence and never redone."""

from __future__ import annotations

import io
import threading

import pypdf
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from aifactory.domain.jobs import JobState
from aifactory.domain.money import euro_text
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.errors import InvalidInput, NotFound, PermissionDenied
from aifactory.services.auth import principal_of
from aifactory.services.invoices import get_invoice, issue_invoice, list_invoices
from aifactory.services.principal import Principal
from aifactory.services.reports import funder_report
from aifactory.services.tenancy import (
    add_member,
    create_organisation,
    create_project,
    create_user,
    user_by_name,
)
from aifactory.services.usage import usage
from aifactory.store.db import Database, is_sqlite
from aifactory.store.models import IssuedInvoice
from tests.conftest import seed_facility
from tests.services.money_rows import (
    H,
    Metered,
    a_job,
    a_programme,
    an_allocation,
    lab_pilot,
    run_attempt,
)

JAN = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FEB = 1_769_904_000.0  # 2026-02-01T00:00:00Z
MAR = 1_772_323_200.0  # 2026-03-01T00:00:00Z
DAY = 86400.0
ISSUED = FEB + DAY  # 2026-02-02
GRID = 300.0  # g CO2 per kWh
USERS = {
    "owen": FacilityRole.USER,
    "alice": FacilityRole.USER,
    "bob": FacilityRole.USER,
    "fiona": FacilityRole.FINANCE,
    "olga": FacilityRole.OPERATOR,
}


def who(session: Session, name: str) -> Principal:
    return principal_of(session, user_by_name(session, name))


ONE_GPU_HOUR = {"gpus": 1, "cpus": 1, "gpu_cents": 250, "cpu_cents": 2, "subsidy_cents": 126}


@pytest.fixture
def world(db: Database) -> Database:
    """Project `lab` (uva, a university; owen owns it, alice is a member) and project `shop`
    (spark, a startup; bob owns it), both paying from the `pilot` programme (€ 2.50 per
    GPU-hour, € 0.02 per CPU-hour, 50 % subsidy). Usage, by end time:

    - lab job 5, Dec 31: 1 GPU-h, 250 + 2 cents, subsidy 126 (December)
    - shop job 4, Jan 5: 4 GPUs × 4 h, 4000 + 64 cents, subsidy 2032; waited a day
    - lab job 1, Jan 10: 2 GPUs × 2 h, 1000 + 16 cents, subsidy 508; waited an hour
    - lab job 3, Jan 15: ½ GPU-h metered only (no allocation, no cents); waited 10 min
    - lab job 2, attempt 1, Jan 20: 1 GPU-h, 250 + 2 cents, subsidy 126; waited an hour,
      then was preempted and requeued at its end (01:00)
    - lab job 2, attempt 2, Jan 31 23:30 – Feb 1 00:30: 1 GPU-h, 250 + 2 cents (February)
    """
    seed_facility(db, now=JAN - 30 * DAY)
    with db.session() as s:
        admin = who(s, "admin")
        for name, role in USERS.items():
            create_user(s, admin, name=name, email=None, facility_role=role, now=JAN)
        create_organisation(s, admin, name="uva", kind=OrgKind.UNIVERSITY, now=JAN)
        create_organisation(s, admin, name="spark", kind=OrgKind.STARTUP, now=JAN)
        lab = create_project(s, admin, name="lab", organisation="uva", owner="owen", now=JAN)
        shop = create_project(s, admin, name="shop", organisation="spark", owner="bob", now=JAN)
        add_member(s, admin, project="lab", user="alice", role=ProjectRole.MEMBER, now=JAN)
        pilot = a_programme(s)
        lab_pays = an_allocation(s, "lab-pilot", project_id=lab.id, programme_id=pilot.id)
        shop_pays = an_allocation(s, "shop-pilot", project_id=shop.id, programme_id=pilot.id)
        owen, bob = user_by_name(s, "owen").id, user_by_name(s, "bob").id
        submitted = {
            1: (lab, owen, JAN + 9 * DAY + 9 * H),
            2: (lab, owen, JAN + 19 * DAY - H),
            3: (lab, owen, JAN + 14 * DAY - 600),
            4: (shop, bob, JAN + 3 * DAY),
            5: (lab, owen, JAN - 5 * H),
        }
        j1, j2, j3, j4, j5 = (
            a_job(s, project_id=project.id, user_id=user, submitted_at=at)
            for project, user, at in submitted.values()
        )

        december = Metered(JAN - 4 * H, JAN - 3 * H, **ONE_GPU_HOUR, energy_j=2.52e6)
        run_attempt(s, j5, 1, december, lab_pays)
        shop_use = Metered(JAN + 4 * DAY, JAN + 4 * DAY + 4 * H, 4, 8, 4000, 64, 2032, 1e7)
        run_attempt(s, j4, 1, shop_use, shop_pays)
        lab_use = Metered(JAN + 9 * DAY + 10 * H, JAN + 9 * DAY + 12 * H, 2, 4, 1000, 16, 508, 5e6)
        run_attempt(s, j1, 1, lab_use, lab_pays)
        free = Metered(JAN + 14 * DAY, JAN + 14 * DAY + H / 2, 1, 1, 0, 0, 0, 1.26e6, False)
        run_attempt(s, j3, 1, free, None)
        first = Metered(
            JAN + 19 * DAY, JAN + 19 * DAY + H, **ONE_GPU_HOUR, energy_j=2.52e6, measured=False
        )
        run_attempt(s, j2, 1, first, lab_pays, end_state=JobState.PREEMPTED)
        second = Metered(FEB - H / 2, FEB + H / 2, **ONE_GPU_HOUR, energy_j=2.52e6)
        run_attempt(s, j2, 2, second, lab_pays)
    return db


# -- usage ------------------------------------------------------------------------------------


def test_usage_lists_january_with_exact_totals(world: Database) -> None:
    with world.read() as s:
        found = usage(s, who(s, "admin"), project=None, start=JAN, end=FEB, grid_g_per_kwh=GRID)

    assert [(r.project, r.record.job_id, r.record.attempt) for r in found.rows] == [
        ("shop", 4, 1),
        ("lab", 1, 1),
        ("lab", 3, 1),
        ("lab", 2, 1),
    ]
    first = found.rows[1]
    assert (first.allocation, first.programme, first.gpu_hours) == ("lab-pilot", "pilot", 4.0)
    assert (first.cost_cents, first.record.subsidy_cents, first.net_cents) == (1016, 508, 508)
    assert first.energy_source == "measured"
    assert first.co2_g == pytest.approx(5e6 / 3.6e6 * GRID)
    metered_only = found.rows[2]
    assert (metered_only.allocation, metered_only.programme) == (None, None)
    assert metered_only.energy_source == "modelled"
    totals = found.totals
    assert (totals.records, totals.gpu_s, totals.cpu_s) == (4, 77_400, 149_400)
    assert (totals.cost_cents, totals.subsidy_cents, totals.net_cents) == (5332, 2666, 2666)
    assert totals.gpu_hours == 21.5
    assert totals.energy_j == pytest.approx(18.78e6)
    assert totals.co2_g == pytest.approx(1565.0)


def test_usage_totals_cover_what_the_limit_leaves_out(world: Database) -> None:
    with world.read() as s:
        found = usage(
            s, who(s, "fiona"), project=None, start=None, end=None, grid_g_per_kwh=GRID, limit=2
        )

    assert [r.record.job_id for r in found.rows] == [5, 4]
    assert found.totals.records == 6


def test_members_see_their_projects_usage_and_nothing_else(world: Database) -> None:
    with world.read() as s:
        alice, bob = who(s, "alice"), who(s, "bob")
        mine = usage(s, alice, project=None, start=None, end=None, grid_g_per_kwh=GRID)
        with pytest.raises(NotFound) as hidden:
            usage(s, bob, project="lab", start=None, end=None, grid_g_per_kwh=GRID)
        with pytest.raises(NotFound):
            usage(s, who(s, "fiona"), project="nowhere", start=None, end=None, grid_g_per_kwh=GRID)
        with pytest.raises(InvalidInput) as backwards:
            usage(s, alice, project=None, start=FEB, end=JAN, grid_g_per_kwh=GRID)
        seen_by = {
            name: {
                r.project
                for r in usage(
                    s, who(s, name), project=None, start=None, end=None, grid_g_per_kwh=GRID
                ).rows
            }
            for name in ("fiona", "olga", "bob")
        }

    assert {r.project for r in mine.rows} == {"lab"}
    assert [r.record.job_id for r in mine.rows] == [5, 1, 3, 2, 2]
    assert hidden.value.field == "project"
    assert backwards.value.field == "to"
    assert seen_by == {"fiona": {"lab", "shop"}, "olga": {"lab", "shop"}, "bob": {"shop"}}


# -- invoices ---------------------------------------------------------------------------------


def test_an_invoice_bills_the_months_paid_usage_to_the_cent(world: Database) -> None:
    with world.session() as s:
        issued = issue_invoice(
            s, who(s, "fiona"), project="lab", month="2026-01", now=ISSUED, vat_pct=21
        )
    invoice = issued.invoice

    assert issued.created
    assert invoice.number == "AIF-2026-000001"
    # Jobs 1 and 2 (attempt 1): not December's, not February's, not the metered-only job 3.
    assert (invoice.gross_cents, invoice.subsidy_cents, invoice.net_cents) == (1268, 634, 634)
    # 21 % of € 6.34 is € 1.3314: 133 cents.
    assert (invoice.vat_pct, invoice.vat_cents, invoice.total_cents) == (21, 133, 767)
    assert invoice.lines == [
        {
            "description": "GPU time h100, pilot programme",
            "quantity": "5.00",
            "unit": "GPU-h",
            "unit_price": "2.50",
            "amount_cents": 1250,
        },
        {
            "description": "CPU time, pilot programme",
            "quantity": "9.00",
            "unit": "CPU-h",
            "unit_price": "0.02",
            "amount_cents": 18,
        },
        {
            "description": "Subsidy pilot programme (50 %)",
            "quantity": "",
            "unit": "",
            "unit_price": "",
            "amount_cents": -634,
        },
    ]
    assert sum(line["amount_cents"] for line in invoice.lines) == invoice.net_cents
    assert invoice.csv.splitlines()[-1] == "Total,,,,7.67"
    pdf_text = pypdf.PdfReader(io.BytesIO(invoice.pdf)).pages[0].extract_text()
    assert "AIF-2026-000001" in pdf_text
    assert euro_text(767) in pdf_text
    assert invoice.issued_by == "fiona"


def test_issuing_again_returns_the_invoice_as_issued(world: Database) -> None:
    with world.session() as s:
        first = issue_invoice(
            s, who(s, "fiona"), project="lab", month="2026-01", now=ISSUED, vat_pct=21
        )
    with world.session() as s:
        again = issue_invoice(
            s, who(s, "admin"), project="lab", month="2026-01", now=ISSUED + 9 * DAY, vat_pct=9
        )
        count = s.query(IssuedInvoice).count()

    assert not again.created
    assert (again.invoice.id, again.invoice.number) == (first.invoice.id, first.invoice.number)
    assert (again.invoice.vat_pct, again.invoice.issued_at) == (21, ISSUED)
    assert again.invoice.pdf == first.invoice.pdf
    assert count == 1


def test_numbers_run_in_sequence_within_a_year_and_restart_the_next(world: Database) -> None:
    numbers = []
    for project, month, now in [
        ("lab", "2025-12", ISSUED),
        ("shop", "2026-01", ISSUED + 1),
        ("lab", "2026-01", ISSUED + 2),
        ("shop", "2025-12", JAN + 370 * DAY),  # issued in 2027
    ]:
        with world.session() as s:
            issued = issue_invoice(
                s, who(s, "fiona"), project=project, month=month, now=now, vat_pct=21
            )
            numbers.append(issued.invoice.number)

    assert numbers == ["AIF-2026-000001", "AIF-2026-000002", "AIF-2026-000003", "AIF-2027-000001"]


def test_a_month_is_invoiced_only_once_it_has_closed(world: Database) -> None:
    with world.session() as s, pytest.raises(InvalidInput) as early:
        issue_invoice(s, who(s, "admin"), project="lab", month="2026-02", now=MAR - 1, vat_pct=21)

    assert early.value.field == "month"
    assert early.value.message == (
        "month 2026-02 is not closed yet; invoices are issued from 2026-03-01"
    )
    with world.session() as s:
        assert (
            issue_invoice(
                s, who(s, "admin"), project="lab", month="2026-02", now=MAR, vat_pct=21
            ).invoice.gross_cents
            == 252
        )  # job 2's second attempt


def test_a_charge_settled_after_its_month_was_invoiced_is_billed_the_next_month(
    world: Database,
) -> None:
    """Invoices bill by when a charge was booked (settled), not when the work ended: usage
    settled late (the control plane was down at the month's end) is never lost."""
    with world.session() as s:
        january = issue_invoice(
            s, who(s, "admin"), project="lab", month="2026-01", now=FEB + 60, vat_pct=21
        )
        lab = january.invoice.project_id
        owen = user_by_name(s, "owen").id
        late = a_job(s, project_id=lab, user_id=owen, submitted_at=FEB - 3 * H)
        ended_in_january = Metered(
            FEB - 2 * H, FEB - H, **ONE_GPU_HOUR, energy_j=1.0, booked_at=FEB + H
        )
        run_attempt(s, late, 1, ended_in_january, lab_pilot(s))
    with world.session() as s:
        february = issue_invoice(
            s, who(s, "admin"), project="lab", month="2026-02", now=MAR, vat_pct=21
        )
    assert january.invoice.gross_cents == 1268  # as issued: unchanged
    assert february.invoice.gross_cents == 252 + 252  # job 2's second attempt and the late one


@pytest.mark.parametrize("month", ["2026-1", "2026-13", "2026-00", "26-01", "2026-01x", "٢٠٢٦-٠١"])
def test_a_malformed_month_is_refused(world: Database, month: str) -> None:
    with world.session() as s, pytest.raises(InvalidInput) as refused:
        issue_invoice(s, who(s, "admin"), project="lab", month=month, now=MAR, vat_pct=21)

    assert refused.value.field == "month"


def test_who_may_issue_and_read_invoices(world: Database) -> None:
    with world.session() as s:
        for name in ("alice", "olga", "owen", "bob"):  # finance issues; owners only read
            with pytest.raises(PermissionDenied):
                issue_invoice(s, who(s, name), project="lab", month="2026-01", now=MAR, vat_pct=21)
        issue_invoice(s, who(s, "fiona"), project="lab", month="2026-01", now=MAR, vat_pct=21)
        issue_invoice(s, who(s, "admin"), project="shop", month="2026-01", now=MAR, vat_pct=21)
    with world.read() as s:
        assert get_invoice(s, who(s, "alice"), project="lab", month="2026-01").project == "lab"
        with pytest.raises(NotFound) as hidden:
            get_invoice(s, who(s, "bob"), project="lab", month="2026-01")
        with pytest.raises(NotFound) as missing:
            get_invoice(s, who(s, "alice"), project="lab", month="2025-12")
        listed = {
            name: [(v.project, v.invoice.month) for v in list_invoices(s, who(s, name))]
            for name in ("fiona", "olga", "alice", "bob")
        }
        with pytest.raises(NotFound):
            list_invoices(s, who(s, "bob"), project="lab")

    assert hidden.value.field == "project"
    assert missing.value.field == "month"
    assert listed == {
        "fiona": [("lab", "2026-01"), ("shop", "2026-01")],
        "olga": [],  # operators read usage, not invoices
        "alice": [("lab", "2026-01")],
        "bob": [("shop", "2026-01")],
    }


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite writers never race
def test_concurrent_issues_take_consecutive_numbers(world: Database) -> None:
    """Two invoices issued at once: the second insert waits on the first's number, fails
    when the first commits, and counts again."""
    assert not is_sqlite(world.url)
    first_added = threading.Event()
    release = threading.Event()
    numbers: dict[str, str] = {}

    def issue_lab_and_hold() -> None:
        with world.session() as s:
            issued = issue_invoice(
                s, who(s, "admin"), project="lab", month="2026-01", now=ISSUED, vat_pct=21
            )
            s.flush()
            numbers["lab"] = issued.invoice.number
            first_added.set()
            assert release.wait(30)

    holder = threading.Thread(target=issue_lab_and_hold)
    holder.start()
    assert first_added.wait(30)
    waiter = threading.Thread(target=lambda: numbers.update(shop=_issue_shop(world)))
    waiter.start()
    _until_a_lock_is_awaited(world)
    release.set()
    holder.join(30)
    waiter.join(30)

    assert numbers == {"lab": "AIF-2026-000001", "shop": "AIF-2026-000002"}


def _issue_shop(world: Database) -> str:
    with world.session() as s:
        return issue_invoice(
            s, who(s, "admin"), project="shop", month="2026-01", now=ISSUED, vat_pct=21
        ).invoice.number


def _until_a_lock_is_awaited(world: Database) -> None:
    """Block until some session waits on a lock (the second insert on the first's number)."""
    for _ in range(3000):
        with world.read() as s:
            waiting = s.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
        if waiting:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the second issue never waited on the first")


# -- funder reports ---------------------------------------------------------------------------


def test_the_funder_report_of_january(world: Database) -> None:
    with world.read() as s:
        report = funder_report(s, who(s, "fiona"), start=JAN, end=FEB, grid_g_per_kwh=GRID)

    # Job 2's second attempt counts for its half in January; December's job 5 not at all.
    assert report.gpu_hours_by_programme == {"(none)": 0.5, "pilot": 21.5}
    assert report.gpu_hours_by_org_kind == {"startup": 16.0, "university": 6.0}
    assert report.gpu_hours_total == 22.0
    assert (report.jobs, report.organisations_served, report.projects_served) == (4, 2, 2)
    assert report.energy_kwh_measured == pytest.approx(16.26e6 / 3.6e6)
    assert report.energy_kwh_modelled == pytest.approx(3.78e6 / 3.6e6)
    assert report.co2_kg == pytest.approx(20.04e6 / 3.6e6 * GRID / 1000)
    assert report.utilisation == pytest.approx(22.0 * H / (8 * 31 * DAY))
    # Job 2's second wait runs from its requeue (Jan 20 01:00), not from its submission.
    pilot = report.wait_by_programme["pilot"]
    second_wait = (FEB - H / 2) - (JAN + 19 * DAY + H)
    assert (pilot.jobs, pilot.p50_s, pilot.p95_s) == (4, 3600, second_wait)
    assert pilot.avg_s == (DAY + 2 * H + second_wait) / 4
    none = report.wait_by_programme["(none)"]
    assert (none.jobs, none.avg_s) == (1, 600)
    assert report.pool_share["pilot"].delivered == pytest.approx(21.5 / 22)
    assert report.pool_share["research"].promised == 0.5


def test_funder_reports_are_for_the_facility_only(world: Database) -> None:
    with world.read() as s:
        for name in ("admin", "fiona", "olga"):
            funder_report(s, who(s, name), start=JAN, end=FEB, grid_g_per_kwh=GRID)
        with pytest.raises(PermissionDenied):
            funder_report(s, who(s, "owen"), start=JAN, end=FEB, grid_g_per_kwh=GRID)
        with pytest.raises(InvalidInput) as empty:
            funder_report(s, who(s, "admin"), start=FEB, end=FEB, grid_g_per_kwh=GRID)

    assert empty.value.field == "to"
