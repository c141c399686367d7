"""Leases and job state changes on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest

from aifactory.domain.jobs import IllegalTransition, JobState
from aifactory.services.bootstrap import bootstrap
from aifactory.store.db import Database
from aifactory.store.jobs import (
    NewJob,
    events_of,
    insert_jobs,
    request_preemption,
    switch_job_state,
)
from aifactory.store.leases import release, try_acquire
from aifactory.store.models import Job, Project, User


def test_one_holder_at_a_time_and_epochs_grow_on_takeover(db: Database) -> None:
    with db.session() as s:
        assert try_acquire(s, "control", "a", now=100.0, ttl_s=10) == 1
    with db.session() as s:
        assert try_acquire(s, "control", "b", now=105.0, ttl_s=10) is None
    with db.session() as s:
        assert try_acquire(s, "control", "a", now=108.0, ttl_s=10) == 1  # renewal
    with db.session() as s:
        assert try_acquire(s, "control", "b", now=117.0, ttl_s=10) is None
    with db.session() as s:
        assert try_acquire(s, "control", "b", now=118.5, ttl_s=10) == 2  # expired: taken
    with db.session() as s:
        assert try_acquire(s, "control", "a", now=119.0, ttl_s=10) is None


def test_a_holder_known_dead_is_replaced_at_once(db: Database) -> None:
    with db.session() as s:
        try_acquire(s, "control", "dead", now=0.0, ttl_s=60)
    with db.session() as s:
        epoch = try_acquire(
            s, "control", "alive", now=1.0, ttl_s=60, is_dead=lambda holder: holder == "dead"
        )
    assert epoch == 2


def test_release_lets_the_next_holder_in(db: Database) -> None:
    with db.session() as s:
        try_acquire(s, "control", "a", now=0.0, ttl_s=60)
    with db.session() as s:
        release(s, "control", "a")
    with db.session() as s:
        assert try_acquire(s, "control", "b", now=1.0, ttl_s=60) == 2


def _a_job(db: Database) -> int:
    with db.session() as s:
        bootstrap(s, now=0.0)
        project = s.query(Project).one()
        user = s.query(User).one()
        row = NewJob(
            project_id=project.id,
            user_id=user.id,
            name="j",
            command=["true"],
            env={},
            working_dir=None,
            gpus_per_node=0,
            nodes=1,
            cpus_per_node=1,
            memory_mb_per_node=1,
            gpu_model=None,
            time_limit_s=60,
            preemptible=False,
            priority=0,
            idempotency_key=None,
            submitted_at=0.0,
            updated_at=0.0,
        )
        insert_jobs(s, [row], ["test"])
        return row.id


def test_each_state_change_writes_its_event_in_the_same_transaction(db: Database) -> None:
    job_id = _a_job(db)
    with db.session() as s:
        row = s.get(Job, job_id)
        assert row is not None
        switch_job_state(s, row, JobState.ADMITTED, now=1.0, actor="control", reason="go")
    with db.read() as s:
        events = [(e.from_state, e.to_state, e.reason) for e in events_of(s, job_id)]
    assert events == [(None, "PENDING", "submitted"), ("PENDING", "ADMITTED", "go")]


def test_an_illegal_change_writes_nothing(db: Database) -> None:
    job_id = _a_job(db)
    with pytest.raises(IllegalTransition), db.session() as s:
        row = s.get(Job, job_id)
        assert row is not None
        switch_job_state(s, row, JobState.SUCCEEDED, now=1.0, actor="control")
    with db.read() as s:
        row = s.get(Job, job_id)
        assert row is not None
        assert row.state == "PENDING"
        assert len(events_of(s, job_id)) == 1


def test_a_preemption_request_is_kept_with_an_event_and_changes_no_state(db: Database) -> None:
    job_id = _a_job(db)
    with db.session() as s:
        row = s.get(Job, job_id)
        assert row is not None
        switch_job_state(s, row, JobState.ADMITTED, now=1.0, actor="control", reason="go")
        request_preemption(s, row, "reclaimed for project p", now=2.0, actor="control")
    with db.read() as s:
        row = s.get(Job, job_id)
        assert row is not None
        assert (row.state, row.preempt_requested_at, row.preempt_reason) == (
            "ADMITTED",
            2.0,
            "reclaimed for project p",
        )
        last = events_of(s, job_id)[-1]
        assert (last.from_state, last.to_state, last.reason, last.at) == (
            "ADMITTED",
            "ADMITTED",
            "preemption requested: reclaimed for project p",
            2.0,
        )
