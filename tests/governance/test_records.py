"""Records of processing (GDPR Art. 30) from what the facility holds: terms, recipients,
countries where jobs really ran (node → site → country), erasures, as JSON and CSV; and who
may export them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactory.domain.jobs import JobState
from aifactory.domain.tenancy import FacilityRole
from aifactory.errors import PermissionDenied
from aifactory.governance import erasure
from aifactory.governance.records import SECURITY_MEASURES
from aifactory.services import erasure as erasures
from aifactory.services.records import Format, export_records, record_export
from aifactory.services.tenancy import create_user
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent
from tests.governance.gdpr_world import (
    DAY,
    T0,
    YEAR,
    add_dataset,
    add_job,
    add_sites,
    grant,
    who,
)
from tests.services.accounting_world import build_world

NOW = T0 + DAY
UVA = "University of Amsterdam"


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Database:
    """nl-books (lab, 2 versions) ran in NL and DE and is granted to shop; shop-logs (shop,
    another controller) ran in NL; unused (lab) never ran. nl-books v1 was erased."""
    build_world(db)
    add_sites(db)
    with db.session() as s:
        create_user(
            s,
            who(db, "admin"),
            name="audrey",
            email=None,
            facility_role=FacilityRole.AUDITOR,
            now=T0,
        )
    root, jobs = tmp_path / "datasets", tmp_path / "jobs"
    root.mkdir()
    books = add_dataset(db, root, "nl-books", versions=2)
    logs = add_dataset(db, root, "shop-logs", owner="shop", controller="Spark BV")
    add_dataset(db, root, "unused", classification="internal", retention_until=T0 + 2 * YEAR)
    grant(db, books.dataset_id, "shop")
    add_job(
        db,
        project="lab",
        user="alice",
        state=JobState.SUCCEEDED,
        node="node-1",
        reads=[(books.dataset_id, books.version_ids[0])],
    )
    add_job(
        db,
        project="shop",
        user="bob",
        state=JobState.RUNNING,
        node="de-1",
        reads=[(books.dataset_id, books.version_ids[1])],
    )
    add_job(
        db,
        project="lab",
        user="alice",
        state=JobState.PENDING,
        reads=[(books.dataset_id, books.version_ids[1])],
    )  # not placed: processed nowhere
    add_job(
        db,
        project="shop",
        user="bob",
        state=JobState.SUCCEEDED,
        node="node-1",
        reads=[(logs.dataset_id, logs.version_ids[0])],
    )
    with db.session() as s:
        erasures.request_erasure(
            s,
            who(db, "owen"),
            dataset="nl-books",
            version=1,
            reason="asked",
            stop_running_jobs=False,
            now=NOW,
        )
    erasure.advance(db, NOW, data_root=root, jobs_dir=jobs)
    return db


def export(
    db: Database, user: str = "admin", *, controller: str | None = None, output: Format = "json"
) -> str:
    with db.read() as s:
        found = export_records(s, who(db, user), controller=controller, output=output, now=NOW)
        return found.text


def test_one_record_per_dataset_with_what_the_facility_knows(world: Database) -> None:
    document = json.loads(export(world))
    assert document["controller"] is None
    assert document["security_measures"] == SECURITY_MEASURES
    records = {r["dataset"]: r for r in document["records"]}
    assert list(records) == ["shop-logs", "nl-books", "unused"]  # by controller, then name
    books = records["nl-books"]
    assert books["controller"] == UVA
    assert books["processor"] == "aifactory"
    assert books["owner_project"] == "lab"
    assert [(v["version"], v["state"]) for v in books["versions"]] == [
        (1, "erased"),
        (2, "present"),
    ]
    assert books["purposes"] == ["training", "evaluation"]
    assert books["categories"] == ["personal"]
    assert books["legal_bases"] == ["public_task"]
    assert books["dpia_refs"] == ["DPIA-7"]
    assert books["recipients"] == ["lab", "shop"]
    assert books["countries_processed"] == ["DE", "NL"]
    assert books["residency"] == ["EU"]
    assert books["retention_until"].startswith("2024-11-13")  # T0 + a year, of v2 (present)
    ((done),) = books["erasures"]
    assert (done["version"], done["trigger"]) == (1, "request")
    assert books["security_measures"] == SECURITY_MEASURES
    assert records["shop-logs"]["countries_processed"] == ["NL"]
    assert records["shop-logs"]["recipients"] == ["shop"]
    unused = records["unused"]
    assert (unused["countries_processed"], unused["erasures"], unused["categories"]) == (
        [],
        [],
        ["internal"],
    )


def test_one_controllers_records_as_csv(world: Database) -> None:
    rows = list(csv.DictReader(io.StringIO(export(world, controller=UVA, output="csv"))))
    assert [r["dataset"] for r in rows] == ["nl-books", "unused"]
    books = rows[0]
    assert books["controller"] == UVA
    assert books["countries_processed"] == "DE; NL"
    assert books["recipients"] == "lab; shop"
    assert books["purposes"] == "training; evaluation"
    assert books["versions"] == "1 erased; 2 present"
    assert books["erasures"].startswith("v1 request 2023-11-15")
    assert books["security_measures"] == SECURITY_MEASURES
    assert export(world, controller="nobody", output="csv").splitlines()[1:] == []


def test_admins_and_auditors_export_them_and_it_is_audited(world: Database) -> None:
    assert json.loads(export(world, "audrey"))["records"]
    for user in ("owen", "olga", "alice"):
        with pytest.raises(PermissionDenied):
            export(world, user)
    record_export(world, who(world, "audrey"), controller=UVA, output="csv", records=2, now=NOW)
    with world.read() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "processing_records.export")
        ).one()
    assert (event.actor, event.detail["controller"], event.detail["records"]) == (
        "audrey",
        UVA,
        2,
    )
