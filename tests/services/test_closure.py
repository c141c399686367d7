"""Closing a project: the rule for running jobs, grants revoked both ways, its datasets erased
and its job directories removed by the control loop, then a certificate; and who may."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from aifactory.domain.erasure import report_digest
from aifactory.domain.jobs import JobState
from aifactory.errors import Conflict, NotFound, PermissionDenied
from aifactory.governance import erasure
from aifactory.services.closure import (
    ClosureView,
    close_project,
    closure_certificate,
    get_closure,
    is_closed,
)
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, DatasetGrant, Erasure, Job
from tests.governance.gdpr_world import (
    DAY,
    T0,
    Data,
    add_dataset,
    add_job,
    add_sites,
    end_job,
    grant,
    project_id,
    version_state,
    who,
)
from tests.services.accounting_world import build_world

NOW = T0 + DAY


@dataclass
class World:
    db: Database
    root: Path
    jobs: Path
    books: Data  # lab's, granted to shop
    shop_logs: Data  # shop's, granted to lab
    running: int  # lab's job, running, reads nl-books
    waiting: int  # lab's job, pending
    finished: int  # lab's job, succeeded, with a job directory
    reader: int  # shop's job, running, reads nl-books

    def close(self, user: str = "admin", *, stop: bool = False) -> ClosureView:
        with self.db.session() as s:
            return close_project(
                s,
                who(self.db, user),
                project="lab",
                reason="grant ended; the group moved on",
                stop_running_jobs=stop,
                now=NOW,
            )

    def advance(self, now: float = NOW) -> None:
        erasure.advance(self.db, now, data_root=self.root, jobs_dir=self.jobs)

    def job(self, job_id: int) -> Job:
        with self.db.read() as s:
            return s.get_one(Job, job_id)


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    build_world(db)
    add_sites(db)
    root, jobs = tmp_path / "datasets", tmp_path / "jobs"
    root.mkdir()
    jobs.mkdir()
    books = add_dataset(db, root, "nl-books", versions=2)
    shop_logs = add_dataset(db, root, "shop-logs", owner="shop")
    grant(db, books.dataset_id, "shop")
    grant(db, shop_logs.dataset_id, "lab")
    reads = [(books.dataset_id, books.version_ids[1])]

    def job(project: str, state: JobState, *, data: bool = True) -> int:
        user = "alice" if project == "lab" else "bob"
        return add_job(
            db, project=project, user=user, state=state, reads=reads if data else (), jobs_dir=jobs
        )

    return World(
        db,
        root,
        jobs,
        books,
        shop_logs,
        running=job("lab", JobState.RUNNING),
        waiting=job("lab", JobState.PENDING, data=False),
        finished=job("lab", JobState.SUCCEEDED),
        reader=job("shop", JobState.RUNNING),
    )


def test_refused_while_its_jobs_or_jobs_reading_its_data_run(world: World) -> None:
    with pytest.raises(Conflict) as refused:
        world.close()
    assert refused.value.field == "stop_running_jobs"
    assert f"running jobs {world.running}, {world.reader}" in refused.value.message
    with world.db.read() as s:
        assert not is_closed(s, project_id(world.db, "lab"))
        assert s.scalars(select(Erasure)).all() == []
    assert world.job(world.waiting).state == "PENDING"


def test_a_closure_stops_revokes_erases_removes_and_certifies(world: World) -> None:
    view = world.close(stop=True)
    assert (view.closure.state, view.reason) == ("closing", "grant ended; the group moved on")
    lab = project_id(world.db, "lab")
    with world.db.read() as s:
        assert is_closed(s, lab)
        assert not is_closed(s, project_id(world.db, "shop"))
        grants = s.scalars(select(DatasetGrant).order_by(DatasetGrant.id)).all()
        assert [g.revoked_by for g in grants] == ["admin", "admin"]  # given by lab, given to lab
        triggers = s.scalars(select(Erasure.trigger)).all()
        assert triggers == ["closure", "closure"]  # both versions of nl-books; not shop-logs
    assert world.job(world.waiting).state == "CANCELLED"
    assert world.job(world.running).cancel_requested
    assert world.job(world.reader).cancel_requested

    world.advance()  # the jobs still run: nothing goes yet but the version nobody reads
    assert version_state(world.db, world.books.version_ids[0]) == "erased"
    assert version_state(world.db, world.books.version_ids[1]) == "present"
    assert (world.jobs / str(world.finished)).is_dir()
    with world.db.read() as s:
        assert get_closure(s, who(world.db, "admin"), project="lab").closure.state == "closing"

    end_job(world.db, world.running)
    end_job(world.db, world.reader)
    world.advance(NOW + 60)
    assert not any(p.exists() for p in world.books.paths)
    assert world.shop_logs.paths[0].exists()
    for job_id in (world.running, world.waiting, world.finished):
        assert not (world.jobs / str(job_id)).exists()
    assert (world.jobs / str(world.reader)).is_dir()  # shop's job keeps its directory

    with world.db.read() as s:
        closed = get_closure(s, who(world.db, "owen"), project="lab")  # its owner reads it
        pdf = closure_certificate(s, who(world.db, "admin"), project="lab")
    assert (closed.closure.state, closed.closure.completed_at) == ("closed", NOW + 60)
    report = closed.closure.report
    assert report is not None
    assert report["reason"] == "grant ended; the group moved on"
    assert [j["id"] for j in report["jobs"]] == [world.running, world.waiting, world.finished]
    assert [(e["dataset"], e["version"]) for e in report["erasures"]] == [
        ("nl-books", 1),
        ("nl-books", 2),
    ]
    assert {(g["direction"], g["dataset"]) for g in report["grants"]} == {
        ("given", "nl-books"),
        ("held", "shop-logs"),
    }
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for said in ("lab", report_digest(report), world.books.sha256[1], "removed from the data root"):
        assert said in text, said
    with world.db.read() as s:
        closes = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "project.close")
        ).all()
    assert [d["state"] for d in closes] == ["closing", "closed"]


def test_a_project_is_closed_once(world: World) -> None:
    world.close(stop=True)
    with pytest.raises(Conflict, match="closing already"):
        world.close(stop=True)


def test_only_admins_close_and_only_those_who_read_erasures_see_it(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.close("owen", stop=True)  # its owner
    with pytest.raises(PermissionDenied):
        world.close("bob", stop=True)  # not a member: only admins close, whatever the project
    world.close(stop=True)
    with world.db.read() as s:
        with pytest.raises(PermissionDenied):
            get_closure(s, who(world.db, "alice"), project="lab")
        with pytest.raises(NotFound):
            get_closure(s, who(world.db, "bob"), project="lab")
        with pytest.raises(Conflict, match="still closing"):
            closure_certificate(s, who(world.db, "admin"), project="lab")
        with pytest.raises(NotFound, match="not closed"):
            get_closure(s, who(world.db, "admin"), project="shop")
