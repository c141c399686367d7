"""Data governance on a real running facility (`aifactory up`, SQLite and PostgreSQL, real
subprocess jobs): a job on a dataset its project has no grant for is held with the reason; the
grant releases it and it reads the data, read-only, from the path the facility hands it; an
erasure removes the files and produces the report and a certificate; the erased data can no
longer be declared."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow

TEXT = "Het was een koude winter in Amsterdam.\n"
READER = (
    'cat "$AIFACTORY_DATASET_NL_BOOKS/book.txt"; '
    '(touch "$AIFACTORY_DATASET_NL_BOOKS/new" 2>/dev/null && echo WRITABLE) || echo READ-ONLY'
)


@pytest.fixture
def facility(tmp_path: Path, db_url: str) -> Iterator[FacilityProcess]:
    process = FacilityProcess(tmp_path / "data", db_url, virtual_gpus=2, cpus=4)
    process.data_dir.mkdir()
    process.start()
    yield process
    process.stop()
    process.kill_leftover_jobs()


def until(check: Any, what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job_in(api: Client, job_id: int, *states: str) -> dict[str, Any]:
    return until(
        lambda: (job := api.job(job_id))["state"] in states and job,
        f"job {job_id} in {states}",
    )


def test_grant_run_read_erase(facility: FacilityProcess) -> None:
    data = facility.data_dir / "datasets" / "nl-books" / "v1"
    data.mkdir(parents=True)
    (data / "book.txt").write_text(TEXT)
    retain = datetime.now(UTC) + timedelta(days=365)
    with facility.client() as admin:
        admin.create_organisation("lab", "university")
        admin.create_project("nlp", "lab")
        books = admin.register_dataset(
            "nl-books",
            path="nl-books/v1",
            classification="public",
            residency="NL",
            retention_until=retain,
            licence="public domain",
            controller="AI Factory NL",
            processor="AI Factory NL",
            purposes=["language modelling"],
        )
        (version,) = books["versions"]
        assert version["files"] == 1
        assert len(version["sha256"]) == 64

        job = admin.submit(["bash", "-c", READER], project="nlp", datasets=["nl-books"])
        held = job_in(admin, job["id"], "HELD")
        assert held["state_reason"] == (
            "data: project nlp has no valid grant for dataset nl-books "
            "(its owner grants use: aifactory datasets grant)"
        )
        assert held["datasets"][0]["access"] == "none"

        admin.grant_dataset("nl-books", project="nlp", purpose="language modelling", until=retain)
        done = job_in(admin, job["id"], "SUCCEEDED", "FAILED")
        assert done["state"] == "SUCCEEDED", done
        log = admin.logs(job["id"])["text"]
        assert TEXT in log
        if os.geteuid() != 0:  # root ignores the write bits: read-only "where the OS allows"
            assert "READ-ONLY" in log
        assert done["env"]["AIFACTORY_DATASET_NL_BOOKS"] == str(data.resolve())
        assert done["datasets"][0]["access"] == "granted"
        access = admin.audit(action="dataset.access")
        assert [e["object"] for e in access] == ["dataset:nl-books"]

        erasure = admin.request_erasure("nl-books", 1, reason="the data subject asked (Art. 17)")
        finished = until(
            lambda: (e := admin.erasure(erasure["id"]))["state"] == "done" and e, "erasure"
        )
        assert not data.exists()
        report = finished["report"]
        assert job["id"] in [j["id"] for j in report["jobs"]]
        pdf = PdfReader(io.BytesIO(admin.erasure_certificate(erasure["id"])))
        text = "".join(page.extract_text() for page in pdf.pages)
        assert "nl-books" in text
        assert version["sha256"][:16] in text.replace("\n", "")
        assert admin.dataset("nl-books")["versions"][0]["state"] == "erased"

        with pytest.raises(ApiError) as refused:
            admin.submit(["true"], project="nlp", datasets=["nl-books"])
        assert refused.value.status == 422
        assert refused.value.errors[0]["field"] == "datasets"
