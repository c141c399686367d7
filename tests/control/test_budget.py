"""Budget enforcement in the control loop: reserve at admission, settle at the end of each
attempt, hold what no allocation can pay and release it when it can; on SQLite and PostgreSQL.

The bootstrap gives the `default` project a starter allocation of 100 GPU-h (360,000 GPU-s)
under the research programme (100 % subsidised, € 2.50 per GPU-h). The ledger counts
GPU-milliseconds; the figures below are written as GPU-seconds × `MS`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.accounting import budget, ledger
from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.domain.ledger import EntryKind
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.invoices import issue_invoice
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.jobs import lock_job, switch_job_state
from aifactory.store.models import Allocation, AllocationAlert, LedgerEntry, UsageRecord
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job

MS = 1000
STARTER_S = 100 * 3600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def loop(db: Database, executor: FakeExecutor, clock: FakeClock) -> ControlLoop:
    with db.session() as session:
        bootstrap(session, now=clock())
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10, enforce_budgets=True)
    assert control.tick()
    return control


def submit(db: Database, now: float, *, gpus: int, limit_s: int) -> int:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(name="j", command=("true",), gpus_per_node=gpus, time_limit_s=limit_s)
        return submit_job(session, admin, spec, project=None, idempotency_key=None, now=now).job.id


def ran(started: float, ended: float, outcome: Outcome = Outcome.SUCCEEDED) -> Observation:
    code = None if outcome is Outcome.PREEMPTED else 0
    return Observation(
        Phase.EXITED, started_at=started, ended_at=ended, exit_code=code, outcome=outcome
    )


def starter_balance(db: Database) -> tuple[int, int, int]:
    """(left, settled, reserved) of the default project's starter allocation, in GPU-s × MS."""
    with db.read() as session:
        allocation = session.scalars(select(Allocation)).one()
        balance = ledger.balances(session, [allocation.id])[allocation.id]
        return balance.left_ms, balance.settled_ms, balance.reserved_ms


def in_ms(*gpu_s: int) -> tuple[int, ...]:
    return tuple(s * MS for s in gpu_s)


def test_admission_reserves_the_most_and_the_end_settles_the_real_use(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock(), gpus=2, limit_s=3600)
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED
    assert starter_balance(db) == in_ms(STARTER_S - 7200, 0, 7200)

    start = clock()
    executor.observations[job_id] = ran(start, start + 900)
    loop.tick()
    assert job(db, job_id).state == JobState.SUCCEEDED
    assert starter_balance(db) == in_ms(STARTER_S - 1800, 1800, 0)
    with db.read() as session:
        record = session.scalars(select(UsageRecord)).one()
        kinds = [e.kind for e in session.scalars(select(LedgerEntry).order_by(LedgerEntry.id))]
    assert (record.gpu_ms, record.gpu_model, record.energy_measured) == (1800 * MS, "h100", False)
    assert record.energy_j == pytest.approx(2 * 900 * 700.0)  # two H100s at board power
    # 0.5 GPU-h × € 2.50 and 0.25 CPU-h × € 0.02 (half a cent, rounded up), all subsidised
    assert (record.gpu_cents, record.cpu_cents, record.subsidy_cents) == (125, 1, 126)
    assert (record.gpu_price, record.cpu_price, record.subsidy_pct) == ("2.50", "0.02", 100)
    assert kinds == ["award", "reserve", "release", "settle"]


def test_a_job_the_allocation_cannot_pay_is_held_then_released_by_a_top_up(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock(), gpus=8, limit_s=13 * 3600)  # 104 GPU-h > 100
    loop.tick()
    held = job(db, job_id)
    assert held.state == JobState.HELD
    assert held.state_reason == (
        "no budget: allocation default-starter has 100.0 GPU-h left, job needs up to 104.0"
    )
    assert executor.started == []

    with db.session() as session:
        allocation = session.scalars(select(Allocation)).one()
        ledger.post(
            session,
            allocation_id=allocation.id,
            kind=EntryKind.ADJUST,
            gpu_ms=10 * 3600 * MS,
            key="adjust:test",
            at=clock(),
            actor="admin",
            reason="top-up",
        )
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED
    assert starter_balance(db) == in_ms(110 * 3600 - 104 * 3600, 0, 104 * 3600)


def test_a_second_job_that_would_overdraw_in_the_same_round_is_held(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    """Each fits the balance alone, so both pass the screen; the policy starts the smaller
    first (fairshare orders by size), and the larger no longer fits what is left."""
    larger = submit(db, clock(), gpus=4, limit_s=20 * 3600)  # 80 GPU-h
    smaller = submit(db, clock(), gpus=4, limit_s=6 * 3600)  # 24 GPU-h
    loop.tick()
    assert job(db, smaller).state == JobState.ADMITTED
    assert job(db, larger).state == JobState.HELD
    assert job(db, larger).state_reason == (
        "no budget: allocation default-starter has 76.0 GPU-h left, job needs up to 80.0"
    )
    assert starter_balance(db)[0] == 76 * 3600 * MS


def test_an_expired_allocation_admits_nothing(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    clock.advance(91 * 86400)
    job_id = submit(db, clock(), gpus=1, limit_s=60)
    loop.tick()
    assert job(db, job_id).state == JobState.HELD
    assert job(db, job_id).state_reason == "no budget: the project has no allocation valid now"


def test_cpu_only_jobs_are_not_held_for_gpu_hours(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    clock.advance(91 * 86400)  # no valid allocation at all
    job_id = submit(db, clock(), gpus=0, limit_s=60)
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED


def test_alerts_at_80_and_100_percent_once_each(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    first = submit(db, clock(), gpus=8, limit_s=11 * 3600)  # 88 GPU-h reserved: ≥ 80 %
    loop.tick()
    with db.read() as session:
        assert [a.threshold for a in session.scalars(select(AllocationAlert))] == [80]
    executor.observations[first] = ran(clock(), clock() + 11 * 3600)
    loop.tick()
    second = submit(db, clock(), gpus=4, limit_s=3 * 3600)  # the last 12 GPU-h
    loop.tick()
    assert job(db, second).state == JobState.ADMITTED
    with db.read() as session:
        alerts = list(session.scalars(select(AllocationAlert).order_by(AllocationAlert.id)))
    assert [a.threshold for a in alerts] == [80, 100]
    assert "used 100 % of its 100.0 GPU-h" in alerts[1].message


def test_each_preempted_attempt_is_settled_and_the_next_reserved_afresh(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock(), gpus=2, limit_s=3600)
    loop.tick()
    t0 = clock()
    executor.observations[job_id] = ran(t0, t0 + 600, Outcome.PREEMPTED)
    loop.tick()  # requeued; the next round admits attempt 2
    loop.tick()
    assert job(db, job_id).attempts == 2
    assert starter_balance(db) == in_ms(STARTER_S - 1200 - 7200, 1200, 7200)
    executor.observations[job_id] = ran(t0 + 700, t0 + 1000)
    loop.tick()
    assert starter_balance(db) == in_ms(STARTER_S - 1800, 1800, 0)


def test_a_restart_settles_nothing_twice(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    job_id = submit(db, clock(), gpus=2, limit_s=3600)
    loop.tick()
    executor.observations[job_id] = ran(clock(), clock() + 900)
    loop.tick()
    loop.release()
    successor = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10, enforce_budgets=True)
    assert successor.tick()
    successor.tick()
    assert starter_balance(db) == in_ms(STARTER_S - 1800, 1800, 0)
    with db.read() as session:
        assert len(session.scalars(select(UsageRecord)).all()) == 1


def test_a_restart_settles_an_attempt_that_ended_without_its_settlement(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    """Only reachable if some writer other than the loop ends a job: the safety net."""
    job_id = submit(db, clock(), gpus=2, limit_s=3600)
    loop.tick()
    with db.session() as session:
        row = lock_job(session, job_id)
        assert row is not None
        now = clock()
        switch_job_state(
            session, row, JobState.RUNNING, now=now, actor="t", reason="r", started_at=now
        )
        switch_job_state(session, row, JobState.FAILED, now=now + 300, actor="t", reason="r")
    loop.release()
    successor = ControlLoop(db, FakeExecutor(), Policy(), clock, lease_ttl_s=10)
    assert successor.tick()
    assert starter_balance(db) == in_ms(STARTER_S - 600, 600, 0)
    with db.session() as session:
        assert budget.settle_orphans(session, now=clock()) == 0


DEC_2023 = 1_701_388_800.0  # 2023-12-01T00:00:00Z: the month the fake clock starts in is over


def test_two_hundred_sub_second_jobs_are_billed_what_they_ran(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    """Issue 16's trial, through metering, settlement and the invoice: 200 jobs of under a
    second on one GPU each. Rounded per record, every one under half a second was billed
    0 GPU-s; now each is metered to the millisecond and the invoice line prices their exact
    sum, rounded once."""
    walls_ms = [50 + n * 37 % 900 for n in range(200)]  # 0.05–0.949 s
    wall_of = {submit(db, clock(), gpus=1, limit_s=60): wall for wall in walls_ms}
    while any(job(db, job_id).state != JobState.SUCCEEDED for job_id in wall_of):
        loop.tick()  # settles what ended, starts what fits
        for launch in executor.started:
            if executor.observations[launch.job_id].phase is Phase.STARTING:
                wall_s = wall_of[launch.job_id] / MS
                executor.observations[launch.job_id] = ran(clock(), clock() + wall_s)
        clock.advance(1)

    with db.session() as session:
        metered = sorted(session.scalars(select(UsageRecord.gpu_ms)))
        admin = principal_of(session, user_by_name(session, "admin"))
        issued = issue_invoice(
            session, admin, project="default", month="2023-11", now=DEC_2023, vat_pct=0
        )
        gpu_line = issued.invoice.lines[0]
    assert metered == sorted(walls_ms)  # nothing lost, to the millisecond
    assert starter_balance(db) == (STARTER_S * MS - sum(walls_ms), sum(walls_ms), 0)
    assert sum(wall < 500 for wall in walls_ms) > 100  # billed 0 GPU-s apiece, once
    # 97.4 GPU-s at € 2.50 per GPU-hour: 6.76… cents, rounded once (per record, each
    # rounded to the cent, they came to nothing).
    assert sum(walls_ms) == 97_400
    assert (gpu_line["description"], gpu_line["quantity"]) == (
        "GPU time h100, research programme",
        "0.03",
    )
    assert gpu_line["amount_cents"] == 7
    assert (issued.invoice.gross_cents, issued.invoice.net_cents) == (7, 0)  # all subsidised
