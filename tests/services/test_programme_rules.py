"""At submission a job meets its project's programme rules: the largest job the programme
admits, and whether its jobs are preemptible unless they say otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.domain.jobs import JobSpec
from aifactory.errors import InvalidInput
from aifactory.services.auth import principal_of
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import Allocation, Job, Programme
from tests.conftest import seed_facility

NOW = 1_000.0


def give_allocation(db: Database, *, max_gpus: int | None, preemptible: bool) -> None:
    """Set the rules of the programme (research) of the default project's starter allocation,
    which the bootstrap made valid for 90 days."""
    with db.session() as s:
        programme = s.scalars(select(Programme).where(Programme.name == "research")).one()
        programme.max_gpus_per_job = max_gpus
        programme.preemptible_default = preemptible
        assert len(s.scalars(select(Allocation)).all()) == 1


def submit(db: Database, spec: JobSpec, now: float = NOW) -> Job:
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        job = submit_job(s, admin, spec, project=None, idempotency_key=None, now=now).job
        row = s.get(Job, job.id)
        assert row is not None
        s.expunge(row)
        return row


def test_a_job_larger_than_the_programme_admits_is_refused_naming_gpus(db: Database) -> None:
    seed_facility(db, now=0.0)
    give_allocation(db, max_gpus=4, preemptible=False)
    with pytest.raises(InvalidInput) as refused:
        submit(db, JobSpec(name="big", command=("x",), gpus_per_node=8))
    assert refused.value.field == "gpus"
    assert refused.value.message == (
        "the project's programme (research) allows at most 4 GPUs per job; this job asks for 8"
    )
    assert submit(db, JobSpec(name="ok", command=("x",), gpus_per_node=4)).gpus_per_node == 4


def test_preemptible_follows_the_programme_unless_the_job_says(db: Database) -> None:
    seed_facility(db, now=0.0)
    give_allocation(db, max_gpus=None, preemptible=True)
    assert submit(db, JobSpec(name="a", command=("x",), gpus_per_node=1)).preemptible is True
    spec = JobSpec(name="b", command=("x",), gpus_per_node=1, preemptible=False)
    assert submit(db, spec).preemptible is False


def test_rules_lapse_with_the_allocation(db: Database) -> None:
    seed_facility(db, now=0.0)
    give_allocation(db, max_gpus=4, preemptible=True)
    later = 91 * 86400.0  # the allocation has expired: no programme in force
    job = submit(db, JobSpec(name="a", command=("x",), gpus_per_node=8), now=later)
    assert (job.gpus_per_node, job.preemptible) == (8, False)
