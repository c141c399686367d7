"""Federation through the real API: a file of awards imported twice is one allocation, a bad
record is a 422 naming it and imports nothing, and usage comes back per award and month with
the ledger's totals, as JSON and as CSV. SQLite only: the service tests cover both stores."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from aifactory.client import ApiError, Client
from aifactory.store.db import Database
from aifactory.store.models import Allocation, LedgerEntry
from tests.api.helpers import assert_error, bearer
from tests.conftest import LiveServer
from tests.domain.test_federation import RECORD, as_csv, at
from tests.services.money_rows import Metered, a_job, run_attempt

JAN, FEB = at("2026-01-01"), at("2026-02-01")


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()


def test_an_award_file_imported_twice_is_one_allocation(admin: Client, api: httpx.Client) -> None:
    first = admin.import_awards(json.dumps([RECORD]), fmt="json", source="awards.json")
    again = admin.import_awards(as_csv(RECORD), fmt="csv", source="awards.csv")

    assert (first["created"], first["records"][0]["allocation"]) == (1, "protein-folding-research")
    assert (again["created"], again["unchanged"]) == (0, 1)
    mine = [a for a in admin.allocations() if a["project"] == "protein-folding"]
    assert len(mine) == 1
    trail = admin.federation_imports()
    assert [(i["source"], i["id"]) for i in trail] == [
        ("awards.csv", again["id"]),
        ("awards.json", first["id"]),
    ]
    assert len(admin.audit(action="federation.import")) == 2


def test_a_bad_record_is_a_422_naming_it_and_nothing_is_imported(
    admin: Client, api: httpx.Client, live_server: LiveServer
) -> None:
    bad = {**RECORD, "award_id": "second", "start": "2026-02-30"}
    body = {"source": "a.json", "format": "json", "content": json.dumps([RECORD, bad])}

    response = api.post("/federation/imports", json=body, headers=bearer(live_server.admin_token))

    error = assert_error(response, 422, "records[1].start", reason="not a date")
    assert error["message"].startswith("record 1: start:")
    assert admin.federation_imports() == []
    assert not [a for a in admin.allocations() if a["project"] == "protein-folding"]


def test_a_dry_run_answers_200_and_keeps_nothing(admin: Client) -> None:
    report = admin.import_awards(json.dumps([RECORD]), fmt="json", source="a.json", dry_run=True)

    assert (report["dry_run"], report["id"], report["created"]) == (True, None, 1)
    assert admin.federation_imports() == []


def test_finance_exports_but_may_not_import(
    admin: Client, clients: Callable[[str], Client]
) -> None:
    finance = clients(admin.create_user("fiona", facility_role="finance")["token"])

    with pytest.raises(ApiError) as refused:
        finance.import_awards(json.dumps([RECORD]), fmt="json", source="a.json")
    assert refused.value.status == 403
    assert finance.federation_usage(start="2026-01-01", end="2026-02-01")["usages"] == []


def test_usage_exported_totals_the_ledger_as_json_and_csv(
    admin: Client, live_server: LiveServer
) -> None:
    admin.import_awards(json.dumps([RECORD]), fmt="json", source="awards.json")
    with live_server.db.session() as s:
        allocation = s.scalars(
            select(Allocation).where(Allocation.name == "protein-folding-research")
        ).one()
        job = a_job(s, project_id=allocation.project_id, user_id=1, submitted_at=JAN)
        run_attempt(
            s, job, 1, Metered(JAN + 3600, JAN + 7200.5, 2, 2, 500, 4, 504, 5e6), allocation
        )
        run_attempt(s, job, 2, Metered(FEB + 60, FEB + 660, 1, 1, 42, 1, 43, 1e6), allocation)
    with live_server.db.read() as s:
        settled = -int(
            s.scalar(
                select(func.sum(LedgerEntry.gpu_ms)).where(
                    LedgerEntry.allocation_id == allocation.id, LedgerEntry.kind == "settle"
                )
            )
            or 0
        )

    found = admin.federation_usage(start="2026-01-01", end="2026-03-01", project="protein-folding")
    rows = list(
        csv.DictReader(
            io.StringIO(admin.federation_usage_csv(start="2026-01-01", end="2026-03-01").decode())
        )
    )

    assert found["totals"]["gpu_ms"] == settled == 2 * 3600500 + 600_000
    assert [(u["month"], u["gpu_ms"]) for u in found["usages"]] == [
        ("2026-01", 2 * 3600500),
        ("2026-02", 600_000),
    ]
    assert found["usages"][0]["award_id"] == RECORD["award_id"]
    assert found["usages"][0]["project_id"] == RECORD["project_id"]
    assert sum(int(r["gpu_ms"]) for r in rows) == settled
    assert [r["month"] for r in rows] == ["2026-01", "2026-02"]
