"""The whole money flow on a real running facility (API over HTTP, control loop, local executor
running real processes): a call, a proposal, a review, an award; jobs that use the allocation
until one is HELD for budget; a top-up that releases it; the ledger balancing to the GPU-ms;
an invoice whose PDF parses back; a funder report whose totals match the ledger.

The facility's one clock is real time plus an offset the test moves forward at the end, as if
the month had closed (invoices are issued for closed months only).
"""

from __future__ import annotations

import calendar
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
import uvicorn

from aifactory.config import Settings
from aifactory.server import Facility, app_for, build
from tests.postgres import free_port

pytestmark = pytest.mark.slow
H = 3600


class MovableClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Running:
    facility: Facility
    clock: MovableClock
    url: str
    clients: list[httpx.Client] = field(default_factory=list)

    def as_user(self, token: str) -> httpx.Client:
        client = httpx.Client(
            base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
        )
        self.clients.append(client)
        return client


@pytest.fixture
def running(tmp_path: Path, db_url: str) -> Iterator[Running]:
    clock = MovableClock()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        virtual_gpus=8,
        cpus=8,
        port=free_port(),
        tick_s=0.1,
        grace_s=1,
    )
    facility = build(settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(app_for(facility), host="127.0.0.1", port=settings.port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the facility did not start"
        time.sleep(0.05)
    running = Running(facility, clock, f"http://127.0.0.1:{settings.port}")
    yield running
    for client in running.clients:
        client.close()
    server.should_exit = True
    thread.join(timeout=15)
    facility.db.dispose()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def job_state(api: httpx.Client, job_id: int) -> dict[str, Any]:
    return ok(api.get(f"/jobs/{job_id}"))  # type: ignore[no-any-return]


def run_to_end(api: httpx.Client, **spec: Any) -> dict[str, Any]:
    job = ok(api.post("/jobs", json={"name": "work", **spec}), 201)
    wait_for(lambda: job_state(api, job["id"])["state"] == "SUCCEEDED", f"job {job['id']}")
    return job_state(api, job["id"])


def new_user(admin: httpx.Client, name: str, role: str = "user") -> str:
    return ok(admin.post("/users", json={"name": name, "facility_role": role}), 201)["token"]  # type: ignore[no-any-return]


def test_call_to_invoice_and_funder_report(running: Running) -> None:
    assert running.facility.admin_token is not None
    now = running.clock()
    admin = running.as_user(running.facility.admin_token)

    # ---- tenants: a university lab applies; a company buys compute directly -------------
    ok(admin.post("/organisations", json={"name": "uva", "kind": "university"}), 201)
    ok(admin.post("/organisations", json={"name": "acme", "kind": "company"}), 201)
    alice = running.as_user(new_user(admin, "alice"))
    bob = running.as_user(new_user(admin, "bob"))
    rita = running.as_user(new_user(admin, "rita", "reviewer"))
    fin = running.as_user(new_user(admin, "fin", "finance"))
    ok(admin.post("/projects", json={"name": "nlp", "organisation": "uva", "owner": "alice"}), 201)
    ok(admin.post("/projects", json={"name": "shop", "organisation": "acme", "owner": "bob"}), 201)

    # ---- call → proposal → review → award --------------------------------------------
    call = {
        "name": "open-2026",
        "programme": "research",
        "title": "Open call 2026",
        "opens_at": iso(now - H),
        "closes_at": iso(now + 30 * 86400),
        "budget_gpu_hours": 1000,
    }
    ok(admin.post("/calls", json=call), 201)
    proposal = ok(
        alice.post(
            "/proposals",
            json={
                "call": "open-2026",
                "project": "nlp",
                "title": "Dutch GPT",
                "abstract": "A small Dutch language model.",
                "justification": "Public-domain Dutch books; 150 GPU-h of pretraining.",
                "requested_gpu_hours": 150,
            },
        ),
        201,
    )
    assert proposal["state"] == "submitted"  # beyond the starter size: it needs a review
    pid = proposal["id"]
    ok(admin.post(f"/proposals/{pid}/reviewers", json={"reviewer": "rita"}), 201)
    ok(rita.post(f"/proposals/{pid}/reviews", json={"score": 4, "comment": "Sound plan."}))
    award = {"gpu_hours": 2.0, "valid_from": iso(now - 60), "valid_to": iso(now + 30 * 86400)}
    allocation = ok(admin.post(f"/proposals/{pid}/award", json=award), 201)
    name = allocation["name"]
    assert allocation["left_gpu_hours"] == 2.0
    commercial = {
        "project": "shop",
        "programme": "commercial",
        "gpu_hours": 1.0,
        "valid_from": iso(now - 60),
        "valid_to": iso(now + 30 * 86400),
        "reason": "contract 2026-17",
    }
    ok(admin.post("/allocations", json=commercial), 201)

    # ---- jobs use the award until one is held ------------------------------------------
    sleep = {"command": ["sleep", "1"], "project": "nlp"}
    first = run_to_end(alice, gpus=2, time_limit_s=1800, **sleep)  # reserves 1.0 GPU-h
    (charge,) = first["usage"]  # the job shows what it used and who paid
    assert (charge["allocation"], charge["programme"], charge["gpus"]) == (name, "research", 2)
    assert charge["net"] == "0.00"  # research is fully subsidised, and still metered
    held = ok(alice.post("/jobs", json={"name": "big", "gpus": 4, "time_limit_s": H, **sleep}), 201)
    wait_for(lambda: job_state(alice, held["id"])["state"] == "HELD", "the job to be held")
    assert job_state(alice, held["id"])["state_reason"] == (
        f"no budget: allocation {name} has 2.0 GPU-h left, job needs up to 4.0"
    )
    ok(fin.post(f"/allocations/{name}/adjust", json={"gpu_hours": 3, "reason": "second phase"}))
    wait_for(lambda: job_state(alice, held["id"])["state"] == "SUCCEEDED", "the released job")
    run_to_end(bob, gpus=1, time_limit_s=600, command=["sleep", "1"], project="shop")

    # ---- the ledger balances to the GPU-second -----------------------------------------
    usage = ok(fin.get("/usage"))["records"]
    assert {r["project"] for r in usage} == {"nlp", "shop"}
    entries = ok(fin.get(f"/allocations/{name}/ledger"))
    by_kind: dict[str, int] = {}
    for entry in entries:
        by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0) + entry["gpu_s"]
    nlp_use = sum(r["gpu_s"] for r in usage if r["project"] == "nlp")
    assert -by_kind["settle"] == nlp_use > 0
    assert by_kind["reserve"] + by_kind["release"] == 0  # nothing still reserved
    assert sum(by_kind.values()) == 2 * H + 3 * H - nlp_use
    (row,) = ok(fin.get("/allocations", params={"project": "nlp"}))
    # Whole seconds are each record's, rounded for showing; the balance keeps milliseconds.
    nlp_hours = sum(r["gpu_hours"] for r in usage if r["project"] == "nlp")
    assert row["left_gpu_hours"] == pytest.approx(5 - nlp_hours, abs=1e-9)
    for record in usage:
        held_s = record["gpu_s"] / record["gpus"]
        assert 1 <= held_s < 30  # `sleep 1` on its GPUs, metered from the executor's times

    # ---- the month closes: invoice and funder report -----------------------------------
    ended = max(datetime.fromisoformat(r["ended_at"]) for r in usage)
    month = f"{ended.year:04d}-{ended.month:02d}"
    last_day = calendar.monthrange(ended.year, ended.month)[1]
    month_end = datetime(ended.year, ended.month, last_day, tzinfo=UTC) + timedelta(days=1)
    month_start = datetime(ended.year, ended.month, 1, tzinfo=UTC)
    running.clock.offset = month_end.timestamp() + H - time.time()

    invoice = ok(fin.post("/projects/shop/invoices", json={"month": month}), 201)
    shop_cents = sum(round(float(r["cost"]) * 100) for r in usage if r["project"] == "shop")
    pdf = fin.get(f"/projects/shop/invoices/{month}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert invoice["number"] in text
    assert "shop" in text
    assert f"€ {invoice['total']}" in text.replace(",", "")
    again = ok(fin.post("/projects/shop/invoices", json={"month": month}))
    assert again["number"] == invoice["number"]
    assert fin.get(f"/projects/shop/invoices/{month}.pdf").content == pdf.content
    assert invoice["gross"] == f"{shop_cents / 100:.2f}"
    assert (invoice["subsidy"], invoice["vat_pct"]) == ("0.00", 21)  # commercial: full price
    net_cents = round(float(invoice["net"]) * 100)
    assert round(float(invoice["total"]) * 100) == net_cents + round(net_cents * 0.21)

    report = ok(
        fin.get(
            "/reports/funder", params={"from": month_start.isoformat(), "to": month_end.isoformat()}
        )
    )
    total_gpu_s = sum(r["gpu_s"] for r in usage)
    assert report["gpu_hours_total"] == pytest.approx(total_gpu_s / H, abs=1e-3)
    by_programme = report["gpu_hours_by_programme"]
    assert by_programme["research"] == pytest.approx(nlp_use / H, abs=1e-3)
    assert report["organisations_served"] == 2
    # The sub-cent figures of tiny test jobs round away; the charges themselves are exact.
