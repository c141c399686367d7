"""The live snapshot carries what fair-share needs: decayed usage and runtime history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.control.loop import ControlLoop
from aifactory.control.snapshot import USAGE_HALF_LIVES, _decayed_usage
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.domain.tenancy import OrgKind
from aifactory.executors.base import Observation, Outcome, Phase
from aifactory.scheduler import Policy
from aifactory.scheduler.estimates import RuntimeHistory
from aifactory.scheduler.usage import WEEK_S, Interval, usage_at
from aifactory.services.allocations import create_allocation
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import create_organisation, create_project, user_by_name
from aifactory.store.db import Database
from aifactory.store.models import Allocation, Job
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import PreemptingScheduler, job, submit

T0 = 1_800_000_000.0
DAY = 86400.0


def test_usage_and_runtime_history_reach_the_scheduler(db: Database) -> None:
    clock, executor, scheduler = FakeClock(), FakeExecutor(), PreemptingScheduler()
    with db.session() as session:
        bootstrap(session, now=clock())
    loop = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10, scheduler=scheduler)
    assert loop.tick()
    start = clock()
    done = submit(db, start, gpus=4, name="done")
    loop.tick()
    # It ran 600 s on 4 GPUs (one hour limit), then the facility sees the next job waiting.
    executor.observations[done] = Observation(
        Phase.EXITED, start, start + 600.0, 0, Outcome.SUCCEEDED, "exited 0"
    )
    clock.advance(600.0)
    loop.tick()
    assert job(db, done).state == JobState.SUCCEEDED
    submit(db, clock(), gpus=8, name="next")
    loop.tick()
    seen = scheduler.snapshots[-1]
    # 4 GPUs × 600 s, decayed over the few seconds since (half-life 7 days): ≈ 2400.
    assert seen.projects["default"].usage == pytest.approx(2400.0, rel=1e-3)
    assert isinstance(seen.runtimes, RuntimeHistory)
    assert seen.runtimes.finished == 1
    (waiting,) = seen.pending
    assert seen.runtimes.runtime(waiting) == pytest.approx(600.0)  # same user, same limit


def test_awards_reach_the_scheduler_as_shares_quotas_and_priority(db: Database) -> None:
    """The bootstrap's starter allocation (research: half the facility, priority weight 100)
    is the only award in force; a new project with none gets almost no share."""
    clock, scheduler = FakeClock(), PreemptingScheduler()
    with db.session() as session:
        bootstrap(session, now=clock())
        starter = session.scalars(select(Allocation)).one()
        starter.quota_gpus = 4
        admin = principal_of(session, user_by_name(session, "admin"))
        create_project(session, admin, name="other", organisation="default", owner=None, now=0)
    loop = ControlLoop(db, FakeExecutor(), Policy(), clock, lease_ttl_s=10, scheduler=scheduler)
    assert loop.tick()
    submit(db, clock(), gpus=1)
    loop.tick()
    seen = scheduler.snapshots[-1]
    assert (seen.projects["default"].shares, seen.projects["default"].quota_gpus) == (0.5, 4)
    assert seen.projects["other"].shares == pytest.approx(1e-3)
    assert seen.projects["other"].quota_gpus == 0
    assert [job.priority for job in seen.pending] == [100]


def test_a_pools_idle_projects_leave_its_share_to_their_siblings(db: Database) -> None:
    """Startups are promised 15 % of the facility; of two startup projects with equal awards
    only one has work: it gets the pool's whole share, beside research's 50 %."""
    clock, scheduler = FakeClock(), PreemptingScheduler()
    with db.session() as session:
        bootstrap(session, now=clock())
        admin = principal_of(session, user_by_name(session, "admin"))
        create_organisation(session, admin, name="spark", kind=OrgKind.STARTUP, now=0)
        for name in ("busy", "idle"):
            create_project(session, admin, name=name, organisation="spark", owner=None, now=0)
            create_allocation(
                session,
                admin,
                project=name,
                programme="startup",
                gpu_hours=100,
                valid_from=0,
                valid_to=clock() + 86400,
                reason="test",
                now=clock(),
            )
    loop = ControlLoop(db, FakeExecutor(), Policy(), clock, lease_ttl_s=10, scheduler=scheduler)
    assert loop.tick()
    submit(db, clock(), gpus=1)  # into `default` (research)
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(name="s", command=("true",), gpus_per_node=1)
        submit_job(session, admin, spec, project="busy", idempotency_key=None, now=clock())
    loop.tick()
    seen = scheduler.snapshots[-1]
    assert seen.projects["default"].shares == pytest.approx(0.5)
    assert seen.projects["busy"].shares == pytest.approx(0.15)


def test_the_database_sums_decayed_usage_as_the_scheduler_would(db: Database) -> None:
    """The snapshot's per-project sum in SQL equals scheduler.usage.usage_at over the same runs:
    ended, running, one ended before the ten half-lives read, one that ended as it began."""
    with db.session() as session:
        bootstrap(session, now=T0)
        admin = user_by_name(session, "admin")
        lab, shop = (
            create_project(
                session,
                principal_of(session, admin),
                name=name,
                organisation="default",
                owner=None,
                now=T0,
            ).id
            for name in ("lab", "shop")
        )
        runs = [  # project, GPUs, start, end
            (lab, 4, T0 - 3 * DAY, T0 - 2 * DAY),
            (lab, 1, T0 - 3600.0, None),
            (shop, 8, T0 - 100 * DAY, T0 - 90 * DAY),
            (shop, 2, T0 - 5 * DAY, T0 - 5 * DAY),
            (shop, 2, T0 - 600.0, T0 + 600.0),  # "ended" after now: counts up to now
        ]
        for project_id, gpus, start, end in runs:
            session.add(
                Job(
                    project_id=project_id,
                    user_id=admin.id,
                    name="j",
                    command=["true"],
                    env={},
                    gpus_per_node=gpus,
                    nodes=1,
                    cpus_per_node=1,
                    memory_mb_per_node=1,
                    time_limit_s=86400,
                    preemptible=False,
                    priority=0,
                    state="RUNNING" if end is None else "SUCCEEDED",
                    submitted_at=start,
                    started_at=start,
                    ended_at=end,
                    updated_at=start,
                )
            )
        session.flush()
        names = {lab: "lab", shop: "shop"}
        found = _decayed_usage(session, names, T0, WEEK_S)
    ids = {"lab": lab, "shop": shop}
    recent = [
        Interval(name, g, s, e)
        for name, pid in ids.items()
        for p, g, s, e in runs
        if p == pid and (e is None or e >= T0 - USAGE_HALF_LIVES * WEEK_S)
    ]
    expected = usage_at(recent, T0, WEEK_S)
    assert found == pytest.approx(expected, rel=1e-9)
    assert set(found) == {"lab", "shop"}
