"""The endpoints' autoscaler against the store (control.endpoints): it starts replicas as jobs
of the endpoint's project, steady up to min and preemptible above, replaces those that end,
stops starting ones that keep failing, drains one before stopping it, and wakes an endpoint
scaled to zero when a request waits for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from aifactory.control.endpoints import SHORT_WINDOW_S, scale_endpoints
from aifactory.domain.autoscale import DRAIN_S, MAX_FAILURES
from aifactory.domain.jobs import JobState
from aifactory.services import gateway
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, Endpoint, InferenceKey, InferenceUsage, Job
from tests.conftest import seed_facility
from tests.control.helpers import submit

T0 = 1_800_000_000.0
JOBS = Path("/srv/jobs")


@pytest.fixture
def facility(db: Database) -> Database:
    seed_facility(db, now=T0)
    return db


def an_endpoint(db: Database, *, least: int, most: int, concurrency: int = 2) -> int:
    trained = submit(db, T0, gpus=0, name="train")
    set_state(db, trained, JobState.SUCCEEDED)
    with db.session() as s:
        endpoint = Endpoint(
            project_id=1,  # the bootstrap's default project, the admin's
            name="dutch",
            source_job_id=trained,
            min_replicas=least,
            max_replicas=most,
            concurrency=concurrency,
            idle_timeout_s=300,
            cpus=1,
            memory_mb=1024,
            gpus=0,
            draining={},
            created_by="admin",
            created_at=T0,
        )
        s.add(endpoint)
        s.flush()
        return endpoint.id


def scale(db: Database, now: float) -> None:
    with db.session() as s:
        scale_endpoints(s, jobs_dir=JOBS, now=now)


def replicas(db: Database) -> list[Job]:
    with db.read() as s:
        return list(s.scalars(select(Job).where(Job.endpoint_id.is_not(None)).order_by(Job.id)))


def set_state(db: Database, job_id: int, state: JobState, at: float = T0) -> None:
    """Where the scheduler and executor would have taken the job (not under test here)."""
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.state = state.value
        job.ended_at = at if state in (JobState.FAILED, JobState.SUCCEEDED) else None


def busy(db: Database, endpoint_id: int, seconds: float, at: float) -> None:
    """Requests that spent `seconds` at the gateway in all, ended at `at`."""
    with db.session() as s:
        key = InferenceKey(
            project_id=1, name="k", token_hash="x" * 64, prefix="aik_", models=None,
            token_budget=None, tokens_used=0, created_by="admin", created_at=T0,
            expires_at=None, revoked_at=None,
        )  # fmt: skip
        s.add(key)
        s.flush()
        s.add(
            InferenceUsage(
                key_id=key.id, project_id=1, endpoint_id=endpoint_id, at=at, prompt_tokens=1,
                completion_tokens=1, status=200, ms=seconds * 1000,
            )
        )  # fmt: skip


def test_replicas_are_jobs_of_the_project_steady_up_to_min_and_preemptible_above(
    facility: Database,
) -> None:
    endpoint = an_endpoint(facility, least=1, most=3)
    scale(facility, T0)
    (first,) = replicas(facility)
    assert (first.project_id, first.preemptible, first.name) == (1, False, "endpoint-dutch-0")
    assert "serve" in first.command
    assert first.state == JobState.PENDING.value
    scale(facility, T0 + 1)
    assert len(replicas(facility)) == 1  # a second round starts nothing more
    busy(facility, endpoint, SHORT_WINDOW_S * 5, T0 + 2)  # 5 in flight at 2 each: 3 replicas
    scale(facility, T0 + 3)
    assert [r.preemptible for r in replicas(facility)] == [False, True, True]
    with facility.read() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "endpoint.scale"))
        assert [(e.actor, e.detail["started"]) for e in events] == [
            ("autoscaler", 1),
            ("autoscaler", 2),
        ]


def test_a_replica_that_ends_is_replaced_until_they_keep_failing(facility: Database) -> None:
    endpoint = an_endpoint(facility, least=1, most=1)
    scale(facility, T0)
    for i in range(MAX_FAILURES):
        (live,) = [r for r in replicas(facility) if r.state == JobState.PENDING.value]
        set_state(facility, live.id, JobState.FAILED, T0 + i)
        scale(facility, T0 + i + 0.5)
    assert len(replicas(facility)) == MAX_FAILURES  # the last failure was not replaced
    with facility.read() as s:
        found = s.get(Endpoint, endpoint)
        assert found is not None
        assert found.trouble is not None
        assert f"{MAX_FAILURES} replicas failed" in found.trouble
    scale(facility, T0 + 3600)  # the failures are old now: it tries again
    assert len(replicas(facility)) == MAX_FAILURES + 1
    with facility.read() as s:
        found = s.get(Endpoint, endpoint)
        assert found is not None
        assert found.trouble is None


def test_scaling_down_drains_a_replica_before_it_is_stopped(facility: Database) -> None:
    endpoint = an_endpoint(facility, least=1, most=2, concurrency=1)
    busy(facility, endpoint, SHORT_WINDOW_S * 2, T0)
    scale(facility, T0)
    steady, extra = replicas(facility)
    for replica in (steady, extra):
        set_state(facility, replica.id, JobState.RUNNING)
    later = T0 + 400  # both windows quiet now
    scale(facility, later)
    with facility.read() as s:
        found = s.get(Endpoint, endpoint)
        assert found is not None
        assert found.draining == {str(extra.id): later}
    scale(facility, later + DRAIN_S / 2)
    assert not replicas(facility)[1].cancel_requested
    scale(facility, later + DRAIN_S)
    stopped = replicas(facility)[1]
    assert stopped.id == extra.id
    assert stopped.cancel_requested
    with facility.read() as s:
        found = s.get(Endpoint, endpoint)
        assert found is not None
        assert found.draining == {}
    scale(facility, later + DRAIN_S + 1)  # it is still stopping: the steady one stays
    assert not replicas(facility)[0].cancel_requested
    with facility.read() as s:
        found = s.get(Endpoint, endpoint)
        assert found is not None
        assert found.draining == {}


def test_an_endpoint_scaled_to_zero_wakes_when_a_request_waits(facility: Database) -> None:
    endpoint = an_endpoint(facility, least=0, most=1)
    scale(facility, T0)
    assert replicas(facility) == []
    with facility.session() as s:
        gateway.want_replica(s, endpoint, now=T0 + 1)
    scale(facility, T0 + 2)
    (woken,) = replicas(facility)
    assert woken.preemptible  # above min (0): preemptible
    set_state(facility, woken.id, JobState.RUNNING)
    scale(facility, T0 + 2 + 299)
    assert not replicas(facility)[0].cancel_requested  # idle for less than its timeout
    scale(facility, T0 + 2 + 301)
    scale(facility, T0 + 2 + 301 + DRAIN_S)
    assert replicas(facility)[0].cancel_requested


def test_a_replica_near_its_time_limit_is_replaced_before_it(facility: Database) -> None:
    an_endpoint(facility, least=1, most=1)
    scale(facility, T0)
    (old,) = replicas(facility)
    with facility.session() as s:
        job = s.get(Job, old.id)
        assert job is not None
        job.state = JobState.RUNNING.value
        job.started_at = T0 - job.time_limit_s + 300  # five minutes of its limit left
    scale(facility, T0 + 1)
    old_now, successor = replicas(facility)
    assert (old_now.id, old_now.cancel_requested) == (old.id, False)  # it serves on
    assert not successor.preemptible  # steady, as the one it replaces
    set_state(facility, successor.id, JobState.RUNNING)
    scale(facility, T0 + 2)
    with facility.read() as s:
        found = s.scalars(select(Endpoint)).one()
        assert found.draining == {str(old.id): T0 + 2}  # drained now its successor runs
