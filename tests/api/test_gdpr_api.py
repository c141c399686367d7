"""The GDPR routes over the live API, the SDK and the CLI: erasures with their report and
certificate, records of processing, project export and closure; who may do what.

Datasets and jobs are rows put in directly (tests.governance.gdpr_world) under the server's
data root and jobs directory; the control loop's part is `governance.erasure.advance`, called
here as the loop would call it.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.client.client import ApiError
from aifactory.domain.jobs import JobState
from aifactory.governance import erasure
from tests.api.helpers import Tenants, assert_error, bearer
from tests.conftest import LiveServer
from tests.governance.gdpr_world import YEAR, Data, add_dataset, add_job, add_sites, end_job

ERASURE_FIELDS = {
    "id",
    "dataset",
    "version",
    "owner_project",
    "trigger",
    "reason",
    "state",
    "requested_by",
    "requested_at",
    "completed_at",
    "certificate",
    "active_jobs",
    "report",
}


@dataclass
class World:
    server: LiveServer
    tenants: Tenants
    books: Data  # proj-a's
    running: int  # alice's job in proj-a, running, reads nl-books v1
    done: int  # alice's job in proj-a, succeeded, reads nl-books v1, with a log

    @property
    def root(self) -> Path:
        assert self.server.state.data_root is not None
        return self.server.state.data_root

    @property
    def jobs(self) -> Path:
        assert self.server.state.jobs_dir is not None
        return self.server.state.jobs_dir

    def advance(self) -> None:
        erasure.advance(self.server.db, time.time(), data_root=self.root, jobs_dir=self.jobs)


@pytest.fixture
def world(live_server: LiveServer, tenants: Tenants) -> World:
    tenants.tokens["audrey"] = tenants.admin.create_user("audrey", facility_role="auditor")["token"]
    db = live_server.db
    add_sites(db)
    assert live_server.state.data_root is not None
    assert live_server.state.jobs_dir is not None
    until = time.time() + YEAR
    books = add_dataset(
        db, live_server.state.data_root, "nl-books", owner="proj-a", retention_until=until
    )
    add_dataset(db, live_server.state.data_root, "b-data", owner="proj-b", retention_until=until)
    reads = [(books.dataset_id, books.version_ids[0])]
    jobs = live_server.state.jobs_dir
    running = add_job(db, project="proj-a", user="alice", state=JobState.RUNNING, reads=reads)
    done = add_job(
        db, project="proj-a", user="alice", state=JobState.SUCCEEDED, reads=reads, jobs_dir=jobs
    )
    return World(live_server, tenants, books, running, done)


def erase(api: httpx.Client, headers: dict[str, str], **body: object) -> httpx.Response:
    return api.post(
        "/datasets/nl-books/versions/1/erasure",
        json={"reason": "subject asked", **body},
        headers=headers,
    )


def test_an_erasure_over_the_api(world: World, api: httpx.Client) -> None:
    t = world.tenants
    assert_error(erase(api, t.headers("alice")), 403, reason="owner")  # a member
    assert_error(erase(api, t.headers("vera")), 403)  # a viewer
    assert_error(erase(api, t.headers("bob")), 404)  # another project's member
    assert_error(erase(api, t.headers("carol")), 404)
    assert_error(erase(api, t.headers("owen"), extra=1), 422, "extra")
    assert_error(
        api.post("/datasets/nl-books/versions/1/erasure", json={}, headers=t.headers("owen")),
        422,
        "reason",
    )
    body = assert_error(erase(api, t.headers("owen")), 409, "stop_running_jobs")
    assert f"running job {world.running}" in body["message"]

    made = t.as_("owen").request_erasure(
        "nl-books", 1, reason="subject asked", stop_running_jobs=True
    )
    assert set(made) == ERASURE_FIELDS
    assert (made["state"], made["trigger"], made["owner_project"], made["report"]) == (
        "recorded",
        "request",
        "proj-a",
        None,
    )
    assert_error(erase(api, t.headers("owen"), stop_running_jobs=True), 409, "version")
    assert t.as_("alice").job(world.running)["state"] == "RUNNING"  # asked to stop
    world.advance()
    assert t.as_("owen").erasure(made["id"])["active_jobs"] == [world.running]
    end_job(world.server.db, world.running)
    world.advance()

    shown = t.as_("owen").erasure(made["id"])
    assert (shown["state"], shown["certificate"]) == ("done", True)
    assert [j["id"] for j in shown["report"]["jobs"]] == [world.running, world.done]
    assert not world.books.paths[0].exists()
    response = api.get(f"/erasures/{made['id']}/certificate.pdf", headers=t.headers("audrey"))
    assert response.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "nl-books" in text
    assert world.books.sha256[0] in text
    assert t.as_("owen").erasure_certificate(made["id"]) == response.content

    assert [e["id"] for e in t.admin.erasures()] == [made["id"]]
    assert [e["id"] for e in t.as_("audrey").erasures(state="done")] == [made["id"]]
    assert t.as_("bob").erasures() == []
    assert t.as_("alice").erasures() == []
    assert_error(api.get(f"/erasures/{made['id']}", headers=t.headers("bob")), 404)
    assert_error(api.get(f"/erasures/{made['id']}", headers=t.headers("alice")), 403)
    assert_error(api.get("/erasures/999", headers=t.headers("owen")), 404)
    actions = [e["action"] for e in t.admin.audit(object="dataset:nl-books")]
    assert actions == ["erasure.request", "dataset.erase"]


def test_records_of_processing_over_the_api(world: World, api: httpx.Client) -> None:
    t = world.tenants
    document = t.as_("audrey").processing_records(controller="University of Amsterdam")
    assert [r["dataset"] for r in document["records"]] == ["b-data", "nl-books"]
    books = document["records"][1]
    assert (books["countries_processed"], books["recipients"]) == (["NL"], ["proj-a"])
    admin = bearer(world.server.admin_token)
    response = api.get("/processing-records", params={"format": "csv"}, headers=admin)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["dataset"] for r in rows] == ["b-data", "nl-books"]
    for user in ("owen", "olga"):
        assert_error(api.get("/processing-records", headers=t.headers(user)), 403)
    assert_error(
        api.get("/processing-records", params={"format": "xml"}, headers=t.headers("audrey")), 422
    )
    assert [e["actor"] for e in t.admin.audit(action="processing_records.export")] == [
        "audrey",
        "admin",
    ]


def test_a_project_export_is_a_zip_of_its_data(world: World, api: httpx.Client) -> None:
    t = world.tenants
    data = t.as_("owen").export_project("proj-a")
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    for name in (
        "manifest.json",
        "project.json",
        "jobs.json",
        "usage.json",
        "invoices.json",
        "datasets.json",
        "grants.json",
        "audit.json",
        f"logs/{world.done}/attempt-1.log",
    ):
        assert name in names, name
    manifest = json.loads(archive.read("manifest.json"))
    assert (manifest["project"], manifest["exported_by"]) == ("proj-a", "owen")
    project = json.loads(archive.read("project.json"))
    assert {m["user"]: m["role"] for m in project["members"]} == {
        "owen": "owner",
        "alice": "member",
        "vera": "viewer",
    }
    jobs = json.loads(archive.read("jobs.json"))
    assert [j["id"] for j in jobs] == [world.running, world.done]
    assert jobs[0]["datasets"] == [
        {"dataset": "nl-books", "version": 1, "env": "AIFACTORY_DATASET_X"}
    ]
    assert jobs[0]["events"][0]["to_state"] == "PENDING"
    (owned,) = json.loads(archive.read("datasets.json"))
    assert (owned["name"], [v["sha256"] for v in owned["versions"]]) == (
        "nl-books",
        world.books.sha256,
    )
    audit = json.loads(archive.read("audit.json"))
    assert "member.add" in [e["action"] for e in audit]
    assert archive.read(f"logs/{world.done}/attempt-1.log").startswith(b"job ")

    response = api.get("/projects/proj-a/export", headers=t.headers("owen"))
    assert response.headers["content-type"] == "application/zip"
    assert_error(api.get("/projects/proj-a/export", headers=t.headers("alice")), 403)
    assert_error(api.get("/projects/proj-a/export", headers=t.headers("bob")), 404)
    exports = t.admin.audit(action="project.export")
    assert [(e["actor"], e["object"]) for e in exports] == [("owen", "project:proj-a")] * 2


def test_closing_a_project_over_the_api(world: World, api: httpx.Client) -> None:
    t = world.tenants
    close = {"reason": "contract ended"}
    assert_error(api.post("/projects/proj-a/close", json=close, headers=t.headers("owen")), 403)
    # Only admins close: refused before the project is looked up, so 403 to anyone else.
    assert_error(api.post("/projects/proj-a/close", json=close, headers=t.headers("bob")), 403)
    body = assert_error(
        api.post("/projects/proj-a/close", json=close, headers=t.headers("olga")), 403
    )
    assert "admin" in body["message"]
    with pytest.raises(ApiError) as refused:
        t.admin.close_project("proj-a", reason="contract ended")
    assert (refused.value.status, str(world.running) in refused.value.message) == (409, True)

    closing = t.admin.close_project("proj-a", reason="contract ended", stop_running_jobs=True)
    assert (closing["state"], closing["reason"], closing["certificate"]) == (
        "closing",
        "contract ended",
        False,
    )
    assert_error(
        api.get("/projects/proj-a/closure/certificate.pdf", headers=t.headers("owen")), 409
    )
    end_job(world.server.db, world.running)
    world.advance()
    closed = t.as_("owen").closure("proj-a")
    assert (closed["state"], closed["certificate"]) == ("closed", True)
    assert [e["dataset"] for e in closed["report"]["erasures"]] == ["nl-books"]
    assert not (world.jobs / str(world.done)).exists()
    pdf = t.as_("audrey").closure_certificate("proj-a")
    assert "proj-a" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert_error(api.get("/projects/proj-a/closure", headers=t.headers("bob")), 404)
    admin = bearer(world.server.admin_token)
    assert_error(api.get("/projects/proj-b/closure", headers=admin), 404)  # not closed


def test_the_commands(world: World, tmp_path: Path) -> None:
    server, t = world.server, world.tenants

    def run(*args: str, token: str | None = None) -> str:
        target = ["--url", server.url, "--token", token or server.admin_token]
        result = CliRunner().invoke(app, [*target, *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
        return result.stdout

    owen = t.tokens["owen"]
    said = run(
        "erasures",
        "request",
        "nl-books",
        "1",
        "--reason",
        "asked",
        "--stop-running-jobs",
        token=owen,
    )
    assert "erasure 1 of nl-books version 1 recorded" in said
    end_job(server.db, world.running)
    world.advance()
    listed = run("erasures", token=owen)
    assert "nl-books" in listed
    assert "done" in listed
    shown = run("erasures", "show", "1", token=owen)
    assert "jobs that used it" in shown
    assert str(world.done) in shown
    out = tmp_path / "erasure-1.pdf"
    run("erasures", "certificate", "1", "--out", str(out), token=owen)
    assert out.read_bytes().startswith(b"%PDF")

    csv_text = run("processing-records", "--controller", "University of Amsterdam", "--csv")
    assert csv_text.startswith("controller,processor,dataset")
    assert "nl-books" in run("processing-records")

    archive = tmp_path / "proj-a.zip"
    run("project", "export", "proj-a", "--out", str(archive), token=owen)
    assert "jobs.json" in zipfile.ZipFile(archive).namelist()
    assert "closing" in run("project", "close", "proj-b", "--reason", "done")
    world.advance()
    certificate = tmp_path / "closure.pdf"
    shown = run("project", "closure", "proj-b", "--certificate", str(certificate))
    assert "closed" in shown
    assert certificate.read_bytes().startswith(b"%PDF")


def test_a_long_controller_filter_is_refused_or_audited_never_a_500(
    api: httpx.Client, admin_headers: dict[str, str], live_server: LiveServer
) -> None:
    # Found by tests/api/test_conformance.py: a 1000-character filter overflowed the audit
    # log's object column on PostgreSQL (500). A controller is at most 200 characters.
    longest = "c" * 200
    response = api.get("/processing-records", params={"controller": longest}, headers=admin_headers)
    assert response.status_code == 200, response.text
    too_long = {"controller": "c" * 201}
    assert_error(api.get("/processing-records", params=too_long, headers=admin_headers), 422)
    exported = api.get(
        "/audit", params={"action": "processing_records.export"}, headers=admin_headers
    )
    (event,) = exported.json()
    assert event["object"].startswith("controller:ccc")
    assert event["detail"]["controller"] == longest
