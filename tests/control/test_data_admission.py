"""Datasets at admission, through the real control loop on SQLite and PostgreSQL: a job whose
project has no valid grant is held with the reason and released by a grant; another project's
dataset is named only once granted; a revoked grant stops new attempts at once; a version being
erased holds its jobs; residency keeps a job off nodes in the wrong country, and one no node may
run is refused at submission."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobSpec, JobState
from aifactory.errors import InvalidInput
from aifactory.scheduler import Policy
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.jobs import submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import (
    AuditEvent,
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Erasure,
    JobDataset,
    Project,
    Site,
)
from tests.conftest import FakeClock
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import job

YEAR_S = 365 * 86400.0


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
    control = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=10)
    assert control.tick()
    return control


def dataset(
    db: Database, now: float, name: str, *, residency: str = "NL", owner: str | None = None
) -> int:
    """A registered dataset with one present version (as the registry leaves it)."""
    with db.session() as session:
        owner_id = None
        if owner is not None:
            owner_id = session.scalar(select(Project.id).where(Project.name == owner))
        row = Dataset(
            name=name,
            owner_project_id=owner_id,
            description="",
            controller="AI Factory NL",
            processor="AI Factory NL",
            created_by="admin",
            created_at=now,
        )
        session.add(row)
        session.flush()
        session.add(
            DatasetVersion(
                dataset_id=row.id,
                version=1,
                path=f"/data/{name}/v1",
                size_bytes=10,
                files=1,
                sha256="0" * 64,
                classification="public",
                legal_basis=None,
                special_condition=None,
                dpia_ref=None,
                purposes=["research"],
                residency=residency,
                retention_until=now + YEAR_S,
                licence="public domain",
                state="present",
                registered_by="admin",
                registered_at=now,
                erased_at=None,
            )
        )
        return row.id


def grant(db: Database, dataset_id: int, now: float, *, project: str = "default") -> int:
    with db.session() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == project))
        assert project_id is not None
        row = DatasetGrant(
            dataset_id=dataset_id,
            project_id=project_id,
            purpose="research",
            until=now + 30 * 86400,
            granted_by="admin",
            granted_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def submit(db: Database, now: float, datasets: tuple[str, ...], gpus: int = 1) -> int:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(name="reader", command=("true",), gpus_per_node=gpus, datasets=datasets)
        return submit_job(session, admin, spec, project=None, idempotency_key=None, now=now).job.id


def test_no_grant_holds_with_the_reason_and_a_grant_releases_it(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    books = dataset(db, clock(), "nl-books")
    job_id = submit(db, clock(), ("nl-books",))
    loop.tick()
    held = job(db, job_id)
    assert held.state == JobState.HELD.value
    assert held.state_reason == (
        "data: project default has no valid grant for dataset nl-books "
        "(its owner grants use: aifactory datasets grant)"
    )
    assert executor.starts_of(job_id) == 0
    loop.tick()
    assert job(db, job_id).state == JobState.HELD.value  # still no grant: stays held

    grant(db, books, clock())
    clock.advance(1)
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED.value
    (launch,) = executor.started
    assert launch.env["AIFACTORY_DATASET_NL_BOOKS"] == "/data/nl-books/v1"
    with db.read() as session:
        access = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dataset.access")
        ).one()
    assert access.object == "dataset:nl-books"
    assert access.detail["job"] == job_id
    assert access.detail["nodes"] == ["fake-1"]


def test_the_owner_project_reads_its_own_dataset_without_a_grant(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    dataset(db, clock(), "own-data", owner="default")
    job_id = submit(db, clock(), ("own-data@1",))
    loop.tick()
    assert job(db, job_id).state == JobState.ADMITTED.value
    assert executor.started[0].env["AIFACTORY_DATASET_OWN_DATA"] == "/data/own-data/v1"


def test_a_grant_revoked_before_admission_stops_the_job_at_once(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    books = dataset(db, clock(), "nl-books")
    grant_id = grant(db, books, clock())
    with db.session() as session:  # admission paused so the job waits while the grant goes
        from aifactory.store import flags

        flags.set_admission_paused(session, True)
    job_id = submit(db, clock(), ("nl-books",))
    loop.tick()
    assert job(db, job_id).state == JobState.PENDING.value
    with db.session() as session:
        revoked = session.get(DatasetGrant, grant_id)
        assert revoked is not None
        revoked.revoked_at = clock()
        flags.set_admission_paused(session, False)
    loop.tick()
    assert job(db, job_id).state == JobState.HELD.value
    assert "no valid grant for dataset nl-books" in (job(db, job_id).state_reason or "")
    assert executor.starts_of(job_id) == 0


def test_another_projects_dataset_is_named_only_once_granted_and_held_when_revoked(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    """By the job's project, not the submitter: the admin submits into `default`."""
    with db.session() as session:
        default = session.scalars(select(Project).where(Project.name == "default")).one()
        session.add(Project(organisation_id=default.organisation_id, name="lab", created_at=0))
    theirs = dataset(db, clock(), "lab-data", owner="lab")
    for ref in ("lab-data", "lab-data@1"):
        with pytest.raises(InvalidInput) as refused:
            submit(db, clock(), (ref,))
        assert (refused.value.field, refused.value.message) == (
            "datasets",
            f"no dataset {ref.replace('@', ' version ')} is present",
        )
    grant_id = grant(db, theirs, clock())
    with db.session() as session:
        revoked = session.get_one(DatasetGrant, grant_id)
        revoked.revoked_at = clock()
    job_id = submit(db, clock(), ("lab-data",))  # it had a grant: named, then held
    loop.tick()
    assert job(db, job_id).state == JobState.HELD.value
    assert job(db, job_id).state_reason == (
        "data: project default has no valid grant for dataset lab-data "
        "(its owner grants use: aifactory datasets grant)"
    )
    assert executor.starts_of(job_id) == 0


def test_an_expired_grant_is_no_grant(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    books = dataset(db, clock(), "nl-books")
    grant(db, books, clock())
    clock.advance(31 * 86400)
    job_id = submit(db, clock(), ("nl-books",))
    loop.tick()
    assert job(db, job_id).state == JobState.HELD.value


def test_a_version_being_erased_holds_its_waiting_jobs(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    dataset(db, clock(), "own-data", owner="default")
    job_id = submit(db, clock(), ("own-data",))
    with db.session() as session:
        version = session.scalars(select(DatasetVersion)).one()
        version.state = "erasing"
    loop.tick()
    assert job(db, job_id).state == JobState.HELD.value
    assert job(db, job_id).state_reason == "data: dataset own-data version 1 is erasing"


def test_residency_keeps_a_job_off_a_node_in_another_country(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    dataset(db, clock(), "nl-only", owner="default", residency="NL")
    dataset(db, clock(), "eu-wide", owner="default", residency="EU")
    waiting = submit(db, clock(), ("nl-only",))
    with db.session() as session:  # the node's site turns out to be in Germany
        site = session.get(Site, "NL")
        assert site is not None
        site.country = "DE"
    loop.tick()
    assert job(db, waiting).state == JobState.PENDING.value
    assert executor.starts_of(waiting) == 0
    with pytest.raises(InvalidInput) as refused:
        submit(db, clock(), ("nl-only",))
    assert refused.value.field == "datasets"
    assert "only in NL" in str(refused.value)
    eu = submit(db, clock(), ("eu-wide",))
    loop.tick()
    assert job(db, eu).state == JobState.ADMITTED.value


def test_declared_versions_are_recorded_and_unknown_ones_refused(
    db: Database, loop: ControlLoop, clock: FakeClock
) -> None:
    dataset(db, clock(), "nl-books")
    job_id = submit(db, clock(), ("nl-books@1",))
    with db.read() as session:
        (used,) = session.scalars(select(JobDataset).where(JobDataset.job_id == job_id))
    assert used.env_name == "AIFACTORY_DATASET_NL_BOOKS"
    assert job(db, job_id).countries == ["NL"]
    for bad in (("nl-books@2",), ("no-such",), ("nl-books", "nl-books@1")):
        with pytest.raises(InvalidInput) as refused:
            submit(db, clock(), bad)
        assert refused.value.field == "datasets"


def test_a_recorded_erasure_holds_new_attempts_before_the_data_goes(
    db: Database, loop: ControlLoop, executor: FakeExecutor, clock: FakeClock
) -> None:
    dataset(db, clock(), "own-data", owner="default")
    job_id = submit(db, clock(), ("own-data",))
    with db.session() as session:
        version = session.scalars(select(DatasetVersion)).one()
        session.add(
            Erasure(
                version_id=version.id,
                trigger="request",
                reason="Art. 17",
                requested_by="admin",
                requested_at=clock(),
                state="recorded",
            )
        )
    loop.tick()
    assert job(db, job_id).state_reason == "data: dataset own-data version 1 is to be erased"
    assert executor.starts_of(job_id) == 0
