"""Erasure end to end on real files and a real database: the request and its rule for running
jobs, the control loop's steps (advance), the report and the certificate, retention expiry,
and who may ask."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import event, select, update

from aifactory.domain.datasets import ErasureTrigger
from aifactory.domain.erasure import report_digest
from aifactory.domain.jobs import JobState
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.governance import erasure
from aifactory.governance.removal import OutsideRoot, remove_tree
from aifactory.services import erasure as service
from aifactory.services.erasure import ErasureView
from aifactory.store.db import Database
from aifactory.store.models import (
    AuditEvent,
    DatasetVersion,
    Erasure,
    Job,
    JobEvent,
    OutboxNotification,
    User,
)
from tests.governance.gdpr_world import (
    DAY,
    T0,
    Data,
    add_dataset,
    add_job,
    add_sites,
    end_job,
    grant,
    version_state,
    who,
)
from tests.services.accounting_world import build_world

NOW = T0 + DAY


@dataclass
class World:
    db: Database
    root: Path  # the data root
    jobs: Path  # the jobs directory
    books: Data  # nl-books of project lab, one version

    def advance(self, now: float = NOW, **seam: Any) -> None:
        erasure.advance(self.db, now, data_root=self.root, jobs_dir=self.jobs, **seam)

    def request(
        self, user: str = "owen", *, version: int = 1, stop: bool = False, name: str = "nl-books"
    ) -> ErasureView:
        with self.db.session() as s:
            return service.request_erasure(
                s,
                who(self.db, user),
                dataset=name,
                version=version,
                reason="subject asked (ticket 42)",
                stop_running_jobs=stop,
                now=NOW,
            )

    def erasure(self, erasure_id: int) -> Erasure:
        with self.db.read() as s:
            return s.get_one(Erasure, erasure_id)


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    build_world(db)
    add_sites(db)
    root, jobs = tmp_path / "datasets", tmp_path / "jobs"
    root.mkdir()
    jobs.mkdir()
    return World(db, root, jobs, add_dataset(db, root, "nl-books"))


def reads(data: Data, index: int = 0) -> list[tuple[int, int]]:
    return [(data.dataset_id, data.version_ids[index])]


def pdf_text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def actions(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_an_erasure_removes_the_files_and_reports_who_used_them(world: World) -> None:
    books = world.books
    used = add_job(
        world.db,
        project="lab",
        user="alice",
        state=JobState.SUCCEEDED,
        reads=reads(books),
        jobs_dir=world.jobs,
    )
    grant(world.db, books.dataset_id, "shop")
    other = add_job(world.db, project="shop", user="bob", state=JobState.FAILED, reads=reads(books))
    add_job(world.db, project="lab", user="alice", state=JobState.SUCCEEDED, jobs_dir=world.jobs)

    view = world.request()
    assert (view.erasure.state, view.erasure.trigger, view.dataset) == (
        "recorded",
        "request",
        "nl-books",
    )
    assert books.paths[0].exists()
    world.advance()

    assert not books.paths[0].exists()
    assert (world.root / "nl-books").is_dir()  # only the version went
    assert version_state(world.db, books.version_ids[0]) == "erased"
    done = world.erasure(view.erasure.id)
    assert (done.state, done.completed_at) == ("done", NOW)
    report = done.report
    assert report is not None
    assert report["version"]["sha256"] == books.sha256[0]
    assert report["removed"] == [{"path": str(books.paths[0]), "files": 2, "size_bytes": 60}]
    assert [j["id"] for j in report["jobs"]] == [used, other]
    first, second = report["jobs"]
    assert (first["project"], first["user"], first["state"]) == ("lab", "alice", "SUCCEEDED")
    (home,) = first["artefacts"]
    assert (home["path"], home["exists"], home["files"]) == (str(world.jobs / str(used)), True, 1)
    assert (second["project"], second["artefacts"][0]["exists"]) == ("shop", False)
    assert [(g["project"], g["purpose"]) for g in report["grants"]] == [("shop", "training")]
    assert (report["erasure"]["requested_by"], report["erasure"]["reason"]) == (
        "owen",
        "subject asked (ticket 42)",
    )

    text = pdf_text(done.certificate_pdf or b"")
    for said in ("nl-books", books.sha256[0], report_digest(report), "removed from the data root"):
        assert said in text, said
    assert actions(world.db)[-2:] == ["erasure.request", "dataset.erase"]


def test_a_request_is_refused_while_a_job_runs_unless_it_stops_them(world: World) -> None:
    books = world.books
    running = add_job(
        world.db, project="lab", user="alice", state=JobState.RUNNING, reads=reads(books)
    )
    waiting = add_job(
        world.db, project="lab", user="alice", state=JobState.PENDING, reads=reads(books)
    )
    with pytest.raises(Conflict) as refused:
        world.request()
    assert refused.value.field == "stop_running_jobs"
    assert f"running job {running}" in refused.value.message
    assert str(waiting) not in refused.value.message
    with world.db.read() as s:
        assert s.scalars(select(Erasure)).all() == []
        assert not s.get_one(Job, running).cancel_requested

    view = world.request(stop=True)
    with world.db.read() as s:
        assert s.get_one(Job, running).cancel_requested
        last = s.scalars(select(JobEvent).where(JobEvent.job_id == running)).all()[-1]
        assert last.reason is not None
        assert last.reason.startswith("cancel requested: nl-books version 1 is being erased")
    world.advance()  # the job has not stopped yet: the data stays, present
    assert (
        world.erasure(view.erasure.id).state,
        version_state(world.db, books.version_ids[0]),
    ) == (
        "recorded",
        "present",
    )
    assert books.paths[0].exists()
    with world.db.read() as s:
        assert service.get_erasure(s, who(world.db, "owen"), view.erasure.id).active_jobs == (
            running,
        )

    end_job(world.db, running)
    world.advance()
    assert world.erasure(view.erasure.id).state == "done"
    assert not books.paths[0].exists()


def test_a_job_admitted_after_the_request_is_stopped_before_the_data_goes(world: World) -> None:
    view = world.request()
    late = add_job(
        world.db, project="lab", user="alice", state=JobState.ADMITTED, reads=reads(world.books)
    )
    world.advance()
    with world.db.read() as s:
        assert s.get_one(Job, late).cancel_requested
    assert world.erasure(view.erasure.id).state == "recorded"
    end_job(world.db, late)
    world.advance()
    assert world.erasure(view.erasure.id).state == "done"


def test_a_crash_after_the_version_is_marked_erasing_is_finished_on_the_next_tick(
    world: World,
) -> None:
    view = world.request()
    assert erasure.start_erasure(world.db, view.erasure.id, NOW).value == "erasing"
    # the crash: files still there, the version unusable
    assert world.books.paths[0].exists()
    assert version_state(world.db, world.books.version_ids[0]) == "erasing"
    world.advance(NOW + 5)
    done = world.erasure(view.erasure.id)
    assert (done.state, done.completed_at) == ("done", NOW + 5)
    assert not world.books.paths[0].exists()


def test_a_crash_after_the_files_went_but_before_done_is_finished(world: World) -> None:
    view = world.request()
    erasure.start_erasure(world.db, view.erasure.id, NOW)
    erasure.remove_files(world.db, view.erasure.id, data_root=world.root)
    assert not world.books.paths[0].exists()
    assert world.erasure(view.erasure.id).state == "erasing"
    world.advance()
    assert world.erasure(view.erasure.id).state == "done"
    assert version_state(world.db, world.books.version_ids[0]) == "erased"


def test_a_removal_that_fails_midway_leaves_it_erasing_and_is_run_again(world: World) -> None:
    calls: list[Path] = []

    def fails_once(path: Path, root: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            path.chmod(0o755)
            (path / "part-0.txt").unlink()  # some files went, then
            raise PermissionError(f"cannot remove {path / 'nested'}")
        remove_tree(path, root)

    view = world.request()
    world.advance(remove=fails_once)
    assert world.erasure(view.erasure.id).state == "erasing"
    assert version_state(world.db, world.books.version_ids[0]) == "erasing"  # never present
    assert (world.books.paths[0] / "nested" / "part-1.txt").exists()

    world.advance(remove=fails_once)
    assert world.erasure(view.erasure.id).state == "done"
    assert not world.books.paths[0].exists()
    assert len(calls) == 2


def test_a_path_outside_the_data_root_is_never_removed(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the facility's to erase")
    add_dataset(world.db, world.root, "stray", path=outside)
    view = world.request(name="stray")
    world.advance()
    assert (outside / "keep.txt").exists()
    assert world.erasure(view.erasure.id).state == "erasing"


def test_retention_expiry_erases_by_itself_and_always_stops_the_jobs(world: World) -> None:
    old = add_dataset(world.db, world.root, "old-news", retention_until=NOW - 1)
    running = add_job(
        world.db, project="lab", user="alice", state=JobState.RUNNING, reads=reads(old)
    )
    world.advance()
    with world.db.read() as s:
        (found,) = s.scalars(select(Erasure)).all()
        assert (found.trigger, found.requested_by, found.state) == (
            "retention",
            "control",
            "recorded",
        )
        assert s.get_one(Job, running).cancel_requested
    assert version_state(world.db, old.version_ids[0]) == "present"
    world.advance()  # no second erasure for the same version
    with world.db.read() as s:
        assert len(s.scalars(select(Erasure)).all()) == 1

    end_job(world.db, running)
    world.advance()
    assert world.erasure(found.id).state == "done"
    assert not old.paths[0].exists()
    assert world.books.paths[0].exists()  # not expired


def test_an_erased_or_erasing_version_cannot_be_erased_again(world: World) -> None:
    first = world.request()
    with pytest.raises(Conflict, match=f"erasure {first.erasure.id}"):
        world.request()
    world.advance()
    with pytest.raises(Conflict, match="erased already"):
        world.request()
    with pytest.raises(NotFound):
        world.request(version=2)
    with pytest.raises(NotFound):
        world.request(name="no-such-data")


def test_who_may_ask(world: World) -> None:
    add_dataset(world.db, world.root, "common-crawl-nl", owner=None, classification="public")
    with pytest.raises(PermissionDenied):
        world.request("alice")  # a member of lab
    with pytest.raises(PermissionDenied):
        world.request("vera")  # a viewer
    with pytest.raises(NotFound):
        world.request("bob")  # another project's owner: lab's data does not exist for him
    with pytest.raises(PermissionDenied):
        world.request("owen", name="common-crawl-nl")  # a facility dataset: admins only
    world.request("admin", name="common-crawl-nl")
    with pytest.raises(InvalidInput), world.db.session() as s:
        service.request_erasure(
            s,
            who(world.db, "owen"),
            dataset="nl-books",
            version=1,
            reason=" ",
            stop_running_jobs=False,
            now=NOW,
        )


def test_who_sees_which_erasures(world: World) -> None:
    mine = world.request().erasure.id
    add_dataset(world.db, world.root, "shop-data", owner="shop")
    theirs = world.request("bob", name="shop-data").erasure.id
    with world.db.read() as s:

        def seen(user: str) -> list[int]:
            return [v.erasure.id for v in service.list_erasures(s, who(world.db, user))]

        assert seen("admin") == [theirs, mine]
        assert seen("owen") == [mine]
        assert seen("bob") == [theirs]
        assert seen("alice") == []
        with pytest.raises(NotFound):
            service.get_erasure(s, who(world.db, "bob"), mine)
        with pytest.raises(PermissionDenied):
            service.get_erasure(s, who(world.db, "alice"), mine)
        with pytest.raises(Conflict, match="recorded"):
            service.erasure_certificate(s, who(world.db, "owen"), mine)


@pytest.fixture
def statements(world: World) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(sql)

    engines = {world.db.read_engine, world.db.write_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", count)


def test_nothing_due_costs_one_query(world: World, statements: list[str]) -> None:
    world.advance()
    assert len(statements) == 1, statements
    assert world.books.paths[0].exists()


def test_two_erasures_of_one_version_from_a_race_both_end_done(world: World) -> None:
    first = world.request().erasure.id
    with world.db.session() as s:  # what a retention sweep racing the request could leave
        version = s.get_one(DatasetVersion, world.books.version_ids[0])
        second = erasure.record_erasure(
            s, version, trigger=ErasureTrigger.RETENTION, reason="ended", by="control", now=NOW
        ).id
    world.advance()
    world.advance(NOW + 1)
    assert [world.erasure(e).state for e in (first, second)] == ["done", "done"]
    with world.db.read() as s:
        assert s.get_one(DatasetVersion, world.books.version_ids[0]).erased_at == NOW


def test_removal_never_follows_a_link_swapped_in_for_the_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    theirs = root / "other" / "data"
    theirs.mkdir(parents=True)
    (theirs / "keep.txt").write_text("not yours\n")
    (root / "lab").mkdir()
    version = root / "lab" / "books"  # registered here; then swapped for a link to their data
    version.symlink_to(theirs, target_is_directory=True)
    remove_tree(version, root)
    assert not os.path.lexists(version)  # the link went
    assert (theirs / "keep.txt").read_text() == "not yours\n"  # what it pointed at did not

    (root / "lab2").symlink_to(root / "other", target_is_directory=True)  # a link on the way
    with pytest.raises(OutsideRoot):
        remove_tree(root / "lab2" / "data", root)
    assert (theirs / "keep.txt").exists()


def test_who_asked_and_the_datasets_owners_are_told_once_it_is_done(world: World) -> None:
    with world.db.session() as s:
        for name in ("admin", "owen", "alice"):
            s.execute(update(User).where(User.name == name).values(email=f"{name}@example.org"))
    view = world.request("admin")
    assert told(world.db) == []  # recorded, not done
    world.advance()
    world.advance(NOW + 60)  # nothing new to tell
    subject = "Dataset nl-books version 1 erased"
    assert told(world.db) == [("admin", subject), ("owen", subject)]  # not alice: a member
    assert world.erasure(view.erasure.id).state == "done"


def told(db: Database) -> list[tuple[str, str]]:
    with db.read() as s:
        rows = s.execute(
            select(User.name, OutboxNotification.subject)
            .join(User, User.id == OutboxNotification.user_id)
            .where(OutboxNotification.event == "erasure_completed")
            .order_by(User.name)
        )
        return [(name, subject) for name, subject in rows]
