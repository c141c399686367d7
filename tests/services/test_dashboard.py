"""The dashboard's figures, from minute samples, job admissions and usage, grouped by time
slice in SQL (on SQLite and PostgreSQL, which floor differently); energy only of one's own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from aifactory.control.samples import Sampler
from aifactory.services.auth import principal_of
from aifactory.services.dashboard import SLICES, dashboard
from aifactory.store.db import Database
from aifactory.store.models import FacilitySample, Job, UsageRecord, User
from tests.conftest import seed_facility
from tests.governance.gdpr_world import project_id
from tests.services.accounting_world import DAY, T0, build_world, who

NOW = 1_800_000_000.0
HOUR = 3600.0


def test_utilisation_and_queue_come_from_the_minute_samples(db: Database) -> None:
    seed_facility(db, NOW - 30 * HOUR)  # one 8-GPU node
    sample = Sampler(db, every_s=60)
    sample(NOW - 2 * HOUR)
    sample(NOW - 2 * HOUR + 10)  # too soon: not taken
    with db.session() as session:
        session.execute(
            insert(FacilitySample),
            [
                {
                    "at": NOW - 23.9 * HOUR,
                    "gpus_total": 8,
                    "gpus_busy": 2,
                    "running": 1,
                    "waiting": 3,
                },
                {
                    "at": NOW - 23.8 * HOUR,
                    "gpus_total": 8,
                    "gpus_busy": 6,
                    "running": 2,
                    "waiting": 1,
                },
                {
                    "at": NOW - 30 * HOUR,
                    "gpus_total": 8,
                    "gpus_busy": 8,
                    "running": 1,
                    "waiting": 9,
                },
            ],
        )
        admin = principal_of(session, session.scalars(select(User)).one())
        view = dashboard(session, admin, now=NOW, window_s=24 * HOUR)
        taken = session.scalars(select(FacilitySample.at).order_by(FacilitySample.at)).all()
    assert NOW - 2 * HOUR in taken
    assert len(taken) == 4
    assert view.gpus_total == 8
    # The window starts at its first sample (the facility is younger than the 24 h asked for).
    first_slice = NOW - 23.9 * HOUR + 0.5 * (23.9 * HOUR / SLICES)
    assert view.utilisation_pct[0] == pytest.approx((first_slice, 50.0), abs=1e-3)  # 8 / 16
    assert view.queue_length[0] == pytest.approx((first_slice, 2.0), abs=1e-3)
    assert view.utilisation_pct[-1][1] == 0.0  # the sampler's: an idle facility
    assert len(view.utilisation_pct) == 2  # the sample 30 h ago is outside the window


def _job(project_id: int, user_id: int, submitted: float, admitted: float) -> dict[str, object]:
    return {
        "project_id": project_id,
        "user_id": user_id,
        "name": "j",
        "command": ["true"],
        "env": {},
        "gpus_per_node": 1,
        "nodes": 1,
        "cpus_per_node": 1,
        "memory_mb_per_node": 1024,
        "time_limit_s": 3600,
        "preemptible": False,
        "priority": 0,
        "state": "SUCCEEDED",
        "attempts": 1,
        "submitted_at": submitted,
        "admitted_at": admitted,
        "started_at": admitted,
        "ended_at": admitted + 60,
        "updated_at": admitted + 60,
    }


def _usage(job_id: int, project_id: int, ended: float, kwh: float) -> dict[str, object]:
    return {
        "job_id": job_id,
        "attempt": 1,
        "project_id": project_id,
        "gpus": 1,
        "cpus": 1,
        "started_at": ended - 60,
        "ended_at": ended,
        "gpu_ms": 60_000,
        "cpu_ms": 60_000,
        "energy_j": kwh * 3.6e6,
        "energy_measured": False,
        "gpu_price": "0",
        "cpu_price": "0",
        "subsidy_pct": 0,
        "gpu_cents": 0,
        "cpu_cents": 0,
        "subsidy_cents": 0,
        "booked_at": ended,
    }


def test_waits_are_averaged_by_admission_time_and_energy_is_ones_own(db: Database) -> None:
    build_world(db)
    now = T0 + 2 * DAY
    lab, shop = project_id(db, "lab"), project_id(db, "shop")
    with db.session() as session:
        alice = who(session, "alice")
        start = now - DAY  # a slice is 30 min; the window starts on a slice boundary
        rows = [
            _job(lab, alice.user_id, start + 100, start + 100 + 600),  # waited 10 min
            _job(shop, alice.user_id, start - 100, start - 100 + 1800),  # 30 min, same slice
            _job(lab, alice.user_id, now - 3 * DAY, now - 2 * DAY),  # before the window
        ]
        ids = [
            session.execute(insert(Job).values(**r).returning(Job.id)).scalar_one() for r in rows
        ]
        session.execute(
            insert(UsageRecord),
            [_usage(ids[0], lab, start + 760, 1.5), _usage(ids[1], shop, start + 2060, 4.0)],
        )
        view = dashboard(session, alice, now=now, window_s=DAY)
        staff = dashboard(session, who(session, "olga"), now=now, window_s=DAY)
    assert [round(minutes) for _, minutes in view.mean_wait_min] == [20]
    assert view.energy_total_kwh == pytest.approx(1.5)  # lab's only: alice is not in shop
    assert staff.energy_total_kwh == pytest.approx(5.5)
    assert [day for day, _ in staff.energy_kwh] == [
        datetime.fromtimestamp(start + 760, UTC).strftime("%d %b")
    ]
