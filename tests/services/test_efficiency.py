"""Efficiency reports (services.efficiency) from usage records settled as the facility settles
them, on SQLite and PostgreSQL: asked against used per attempt and over a job, hints only from
measured figures of a succeeded job, who may see them, and a project's least efficient jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from aifactory.domain.jobs import JobSpec, JobState
from aifactory.errors import NotFound
from aifactory.services.efficiency import job_efficiency, least_efficient
from aifactory.services.jobs import submit_job
from aifactory.store.db import Database
from aifactory.store.models import UsageRecord
from tests.services.accounting_world import build_world, who
from tests.services.efficiency_jobs import GB, Ran, a_finished_job

H = 3600.0
OVERSIZED = {  # 8 CPUs, 16 GB and a GPU for 2 h, of which it used little
    "cpu_time_s": 1.3 * 2 * H,
    "peak_rss_mb": 1.2 * GB,
    "gpu_utilisation_pct": 12.0,
    "peak_gpu_memory_mb": 9000.0,
}


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def oversized(db: Database, **kwargs: object) -> int:
    settings: dict[str, object] = {
        "user": "alice",
        "project": "lab",
        "attempts": [Ran(2 * H, OVERSIZED)],
        "gpus": 1,
        "cpus": 8,
        "memory_mb": 16 * GB,
        "time_limit_s": int(24 * H),
    }
    settings.update(kwargs)
    return a_finished_job(db, **settings)  # type: ignore[arg-type]


def test_a_job_that_asked_far_more_than_it_used_is_told_what_to_ask_for(world: Database) -> None:
    job_id = oversized(world)
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.overall is not None
    assert found.overall.cpu_efficiency_pct == pytest.approx(100 * 1.3 / 8)
    assert found.overall.memory_efficiency_pct == pytest.approx(100 * 1.2 / 16)
    assert found.overall.gpu_utilisation_pct == 12.0
    assert found.overall.peak_gpu_memory_mb == 9000.0
    assert found.hints == (
        "asked 16 GB of memory, used at most 1.2 GB: ask for 2 GB",
        "asked 8 CPUs, kept 1.3 busy on average: ask for 2",
        "its GPU was busy 12 % of the time on average: keep it fed (data loading, batch size)",
        "asked a time limit of 24 h, ran 2 h: a limit of 3 h starts sooner (backfill)",
    )


def test_a_job_that_used_what_it_asked_for_gets_no_hint(world: Database) -> None:
    used = {"cpu_time_s": 7.5 * H, "peak_rss_mb": 12.0 * GB, "gpu_utilisation_pct": 93.0}
    job_id = oversized(world, attempts=[Ran(H, used)], time_limit_s=int(1.5 * H))
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.overall is not None
    assert found.overall.cpu_efficiency_pct == pytest.approx(100 * 7.5 / 8)
    assert found.hints == ()


def test_what_was_not_measured_is_none_and_hints_at_nothing(world: Database) -> None:
    job_id = oversized(world, attempts=[Ran(2 * H, {})])  # e.g. a Slurm without accounting
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    use = found.overall
    assert use is not None
    assert (use.cpu_time_s, use.peak_rss_mb, use.gpu_utilisation_pct) == (None, None, None)
    assert (use.cpu_efficiency_pct, use.memory_efficiency_pct) == (None, None)
    assert (use.cpus, use.memory_mb, use.gpus, use.wall_s) == (8, 16 * GB, 1, 2 * H)
    assert found.hints[-1].startswith("asked a time limit of 24 h")  # its wall time is known


def test_a_job_that_failed_or_was_stopped_gets_figures_but_no_hint(world: Database) -> None:
    for end in (JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT):
        job_id = oversized(world, end=end)
        with world.read() as s:
            found = job_efficiency(s, who(s, "alice"), job_id)
        assert found.overall is not None
        assert found.overall.peak_rss_mb == 1.2 * GB
        assert found.hints == ()


def test_a_short_job_gets_only_the_memory_hint(world: Database) -> None:
    job_id = oversized(world, attempts=[Ran(20, {**OVERSIZED, "cpu_time_s": 1.0})])
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.hints == ("asked 16 GB of memory, used at most 1.2 GB: ask for 2 GB",)


def test_over_attempts_sums_add_up_peaks_are_the_largest_and_gpu_use_is_weighted(
    world: Database,
) -> None:
    first = {"cpu_time_s": 100.0, "peak_rss_mb": 3000.0, "gpu_utilisation_pct": 90.0}
    second = {"cpu_time_s": 500.0, "peak_rss_mb": 2000.0, "gpu_utilisation_pct": 30.0}
    job_id = oversized(world, attempts=[Ran(100, first), Ran(300, second)], gpus=2, cpus=4)
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert [a.attempt for a in found.attempts] == [1, 2]
    assert found.attempts[0].use.cpu_efficiency_pct == pytest.approx(25.0)
    use = found.overall
    assert use is not None
    assert (use.wall_s, use.cpu_s, use.gpu_s) == (400, 1600, 800)
    assert use.cpu_time_s == 600
    assert use.peak_rss_mb == 3000
    assert use.gpu_utilisation_pct == pytest.approx((90 * 200 + 30 * 600) / 800)


def test_a_figure_one_attempt_lacks_is_not_claimed_for_the_job(world: Database) -> None:
    measured = {"cpu_time_s": 100.0, "peak_rss_mb": 3000.0}
    job_id = oversized(world, attempts=[Ran(100, {}), Ran(100, measured)])
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.attempts[1].use.peak_rss_mb == 3000
    assert found.overall is not None
    assert found.overall.peak_rss_mb is None
    assert found.overall.cpu_time_s is None


def test_records_made_before_memory_was_kept_count_what_the_job_asked(world: Database) -> None:
    job_id = oversized(world)
    with world.session() as s:
        s.execute(update(UsageRecord).where(UsageRecord.job_id == job_id).values(memory_mb=None))
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.overall is not None
    assert found.overall.memory_mb == 16 * GB


def test_a_job_with_no_ended_attempt_has_nothing_to_report_yet(world: Database) -> None:
    with world.session() as s:
        spec = JobSpec(name="waits", command=("true",))
        made = submit_job(s, who(s, "alice"), spec, project="lab", idempotency_key=None, now=0)
        found = job_efficiency(s, who(s, "alice"), made.job.id)
    assert (found.attempts, found.overall, found.hints) == ((), None, ())
    assert (found.state, found.project, found.owner) == ("PENDING", "lab", "alice")


def test_whoever_may_read_the_job_sees_it_and_no_one_else(world: Database) -> None:
    job_id = oversized(world)
    with world.read() as s:
        for name in ("alice", "vera", "owen", "admin", "olga"):
            assert job_efficiency(s, who(s, name), job_id).job_id == job_id
        for name in ("bob", "rita"):
            with pytest.raises(NotFound):
                job_efficiency(s, who(s, name), job_id)


# ---- a project's least efficient jobs -------------------------------------------------------


def test_the_least_efficient_jobs_are_those_that_wasted_most(world: Database) -> None:
    idle_gpus = oversized(world)  # 2 GPU-hours, 88 % idle
    busy_gpus = oversized(world, attempts=[Ran(2 * H, {**OVERSIZED, "gpu_utilisation_pct": 95})])
    idle_cpus = oversized(world, gpus=0)  # no GPU: ranks by idle CPU-hours
    busy = oversized(world, gpus=0, attempts=[Ran(2 * H, {"cpu_time_s": 16 * H})])
    unmeasured = oversized(world, attempts=[Ran(2 * H, {})])
    with world.read() as s:
        found = least_efficient(s, who(s, "vera"), project="lab", limit=10)
        assert [f.job_id for f in found] == [idle_gpus, busy_gpus, idle_cpus, busy]
        assert unmeasured not in [f.job_id for f in found]
        two = least_efficient(s, who(s, "vera"), project="lab", limit=2)
    assert [f.job_id for f in two] == [idle_gpus, busy_gpus]


def test_only_finished_jobs_of_the_project_count(world: Database) -> None:
    oversized(world, user="bob", project="shop")
    with world.session() as s:
        spec = JobSpec(name="waits", command=("true",))
        submit_job(s, who(s, "alice"), spec, project="lab", idempotency_key=None, now=0)
        assert least_efficient(s, who(s, "alice"), project="lab") == []


def test_a_project_they_cannot_read_does_not_exist_for_them(world: Database) -> None:
    oversized(world)
    with world.read() as s, pytest.raises(NotFound):
        least_efficient(s, who(s, "bob"), project="lab")


def test_a_memory_hint_that_would_free_less_than_a_gb_is_not_given(world: Database) -> None:
    small = {"peak_rss_mb": 11.0, "cpu_time_s": 1.0}
    job_id = oversized(world, attempts=[Ran(3, small)], memory_mb=GB, cpus=1, gpus=0)
    with world.read() as s:
        found = job_efficiency(s, who(s, "alice"), job_id)
    assert found.overall is not None
    assert found.overall.memory_efficiency_pct == pytest.approx(100 * 11 / 1024)
    assert found.hints == ()
