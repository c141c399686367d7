"""Ledger invariants under any sequence of submits, ends, preemptions, cancels, top-ups and
control-plane crashes, driven through the real control loop on a real SQLite database.

After every step, for the default project's allocation:
- its balance (the sum of its entries, in GPU-milliseconds) equals award + adjustments −
  settled use − open reservations, each counted independently from the usage records and the
  job rows;
- it runs out, or goes below zero (an attempt ran into its stop grace period past its limit),
  only with its 100 % alert recorded;
- every ended attempt with a reservation has exactly one usage record, one release and one
  settlement whose money equals the record's — nothing charged twice, nothing forgotten.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from aifactory.accounting import ledger
from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import ACTIVE, JobSpec, JobState
from aifactory.domain.ledger import EntryKind
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.jobs import cancel_job, submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import Allocation, AllocationAlert, Job, LedgerEntry, UsageRecord
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor

LEASE_S = 10.0
OUTCOMES = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.PREEMPTED)


class LedgerMachine(RuleBasedStateMachine):
    template: Path
    workdir: Path

    @initialize()
    def start(self) -> None:
        path = self.workdir / f"{uuid.uuid4().hex}.db"
        shutil.copy(self.template, path)
        self.db = Database(f"sqlite:///{path}")
        self.clock = FakeClock()
        self.executor = FakeExecutor(gpus=8)
        with self.db.session() as session:
            bootstrap(session, now=self.clock())
        self.loop = self._new_loop()
        self.adjustments = 0

    def _new_loop(self) -> ControlLoop:
        loop = ControlLoop(
            self.db, self.executor, Policy(), self.clock, lease_ttl_s=LEASE_S, enforce_budgets=True
        )
        assert loop.tick()
        return loop

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.db.dispose()

    # ---- steps -------------------------------------------------------------------------
    @rule(
        gpus=st.integers(0, 8),
        hours=st.sampled_from([0.1, 1, 4, 12, 30]),
        preemptible=st.booleans(),
    )
    def submit(self, gpus: int, hours: float, preemptible: bool) -> None:
        with self.db.session() as session:
            admin = principal_of(session, user_by_name(session, "admin"))
            spec = JobSpec(
                name="j",
                command=("true",),
                gpus_per_node=gpus,
                time_limit_s=round(hours * 3600),
                preemptible=preemptible,
            )
            submit_job(session, admin, spec, project=None, idempotency_key=None, now=self.clock())

    @rule()
    def tick(self) -> None:
        self.loop.tick()

    @rule(seconds=st.sampled_from([0.25, 1.0, 60.0, 3600.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self._active()))
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES), fraction=st.floats(0, 1.05))
    def end_one(self, data: st.DataObject, outcome: Outcome, fraction: float) -> None:
        job = data.draw(st.sampled_from(self._active()))
        ran = job.time_limit_s * fraction  # past 1: it ran on into its stop grace period
        start = self.clock() - ran
        code = None if outcome in (Outcome.PREEMPTED, Outcome.TIMEOUT) else 0
        self.executor.observations[job.id] = Observation(
            Phase.EXITED, started_at=start, ended_at=self.clock(), exit_code=code, outcome=outcome
        )

    @precondition(lambda self: bool(self._active()))
    @rule(data=st.data())
    def cancel_one(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self._active()))
        with self.db.session() as session:
            admin = principal_of(session, user_by_name(session, "admin"))
            cancel_job(session, admin, job.id, now=self.clock())

    @rule(hours=st.integers(1, 50))
    def top_up(self, hours: int) -> None:
        self.adjustments += 1
        with self.db.session() as session:
            allocation = session.scalars(select(Allocation)).one()
            ledger.post(
                session,
                allocation_id=allocation.id,
                kind=EntryKind.ADJUST,
                gpu_ms=hours * 3_600_000,
                key=f"adjust:{self.adjustments}",
                at=self.clock(),
                actor="admin",
                reason="top-up",
            )

    @rule()
    def crash_and_restart(self) -> None:
        """The loop dies without a word; a successor takes over once its lease has expired."""
        self.clock.advance(LEASE_S + 1)
        self.loop = self._new_loop()

    def _active(self) -> list[Job]:
        with self.db.read() as session:
            states = [s.value for s in ACTIVE]
            return list(session.scalars(select(Job).where(Job.state.in_(states)).order_by(Job.id)))

    # ---- invariants --------------------------------------------------------------------
    @invariant()
    def balance_is_award_minus_use_minus_open_reservations(self) -> None:
        with self.db.read() as session:
            allocation = session.scalars(select(Allocation)).one()
            entries = list(
                session.scalars(
                    select(LedgerEntry).where(LedgerEntry.allocation_id == allocation.id)
                )
            )
            records = list(
                session.scalars(
                    select(UsageRecord).where(UsageRecord.allocation_id == allocation.id)
                )
            )
            jobs = {j.id: j for j in session.scalars(select(Job))}
            alerts = set(session.scalars(select(AllocationAlert.threshold)))
        by_kind = Counter[str]()
        for entry in entries:
            by_kind[entry.kind] += entry.gpu_ms
        settled_use = sum(r.gpu_ms for r in records)
        open_reserved = sum(
            -e.gpu_ms
            for e in entries
            if e.kind == EntryKind.RESERVE
            and e.job_id is not None
            and jobs[e.job_id].attempts == e.attempt
            and JobState(jobs[e.job_id].state) in ACTIVE
        )
        balance = sum(e.gpu_ms for e in entries)
        granted = by_kind[EntryKind.AWARD] + by_kind[EntryKind.ADJUST]
        assert balance == granted - settled_use - open_reserved
        if balance <= 0 and granted > 0:
            assert 100 in alerts  # nothing goes negative (or runs out) unnoticed

    @invariant()
    def each_ended_attempt_is_settled_exactly_once(self) -> None:
        with self.db.read() as session:
            entries = list(
                session.scalars(select(LedgerEntry).where(LedgerEntry.job_id.is_not(None)))
            )
            records = {(r.job_id, r.attempt): r for r in session.scalars(select(UsageRecord))}
            jobs = {j.id: j for j in session.scalars(select(Job))}
            duplicates = session.execute(
                select(UsageRecord.job_id, UsageRecord.attempt)
                .group_by(UsageRecord.job_id, UsageRecord.attempt)
                .having(func.count() > 1)
            ).all()
        assert duplicates == []
        kinds = Counter((e.job_id, e.attempt, e.kind) for e in entries)
        assert all(count == 1 for count in kinds.values())
        for (job_id, attempt, kind), _ in kinds.items():
            if kind != EntryKind.RESERVE:
                continue
            job = jobs[job_id]
            running = job.attempts == attempt and JobState(job.state) in ACTIVE
            ended = (job_id, attempt) in records
            assert running != ended, (job_id, attempt, job.state)
            if ended:
                assert kinds[(job_id, attempt, EntryKind.RELEASE)] == 1
                settle = next(
                    e
                    for e in entries
                    if (e.job_id, e.attempt, e.kind) == (job_id, attempt, EntryKind.SETTLE)
                )
                record = records[(job_id, attempt)]
                assert -settle.gpu_ms == record.gpu_ms
                assert settle.cost_cents == record.gpu_cents + record.cpu_cents
                assert settle.subsidy_cents == record.subsidy_cents


@pytest.mark.slow
def test_ledger_invariants_hold_under_any_sequence(sqlite_template: Path, tmp_path: Path) -> None:
    LedgerMachine.template = sqlite_template
    LedgerMachine.workdir = tmp_path
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
