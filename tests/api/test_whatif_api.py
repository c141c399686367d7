"""Scheduler what-if runs over the API: asked (202), replayed in the background, compared.

The runs live in the process (services.whatif.RUNS), shared by every test of this session:
each test waits for its own runs to end and never counts on the list being empty.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from aifactory.domain.jobs import JobState
from aifactory.errors import Conflict
from aifactory.services.whatif import MAX_WAITING, Ask, Setting, WhatIfRuns
from aifactory.sim.scenarios import Workload
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job
from tests.api.helpers import Tenants, assert_error
from tests.conftest import LiveServer

SMALL: dict[str, Any] = {
    "workload": "itp-merged",
    "jobs": 120,
    "gpus": 64,
    "a": {"policy": "fairshare"},
    "b": {"policy": "slurm"},
}


def finished(api: httpx.Client, headers: dict[str, str], run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        run: dict[str, Any] = api.get(f"/whatif/{run_id}", headers=headers).json()
        if run["state"] in ("done", "failed"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']}"
        time.sleep(0.2)


def test_an_operator_compares_two_policies_on_a_shipped_trace(
    api: httpx.Client, tenants: Tenants
) -> None:
    olga = tenants.headers("olga")

    asked = api.post("/whatif", json=SMALL, headers=olga)

    assert asked.status_code == 202, asked.text
    assert asked.json()["state"] in ("queued", "running")
    assert asked.json()["by"] == "olga"
    run = finished(api, olga, asked.json()["id"])
    assert run["state"] == "done", run["message"]
    assert run["replayed_jobs"] == 120
    assert run["replayed_gpus"] == 64
    assert run["progress"] == 1.0
    a, b = run["outcomes"]
    assert (a["side"], a["label"], b["side"], b["label"]) == ("A", "fairshare", "B", "slurm")
    for outcome in (a, b):
        figures = outcome["figures"]
        assert 0 < figures["utilisation"] <= 1
        assert 0 <= figures["avg_wait"] <= figures["p99_wait"]
        assert figures["p95_wait"] >= 0
        assert figures["avg_bsld"] >= 1
        assert 0 < figures["jain_fairness"] <= 1
        assert outcome["unfinished"] >= 0
        assert all(0 <= share <= 1 for _, share in outcome["busy"])
    listed = api.get("/whatif", headers=olga).json()
    assert run["id"] in [r["id"] for r in listed]
    assert listed == sorted(listed, key=lambda r: -r["id"])


def test_one_policy_with_two_settings_is_a_comparison_of_its_own(
    api: httpx.Client, tenants: Tenants
) -> None:
    olga = tenants.headers("olga")
    body = {
        **SMALL,
        "a": {"policy": "easy", "backfill": False},
        "b": {"policy": "fairshare", "fairness_weight": 4, "half_life_h": 24},
    }

    run = finished(api, olga, api.post("/whatif", json=body, headers=olga).json()["id"])

    assert run["state"] == "done", run["message"]
    labels = [o["label"] for o in run["outcomes"]]
    assert labels == ["easy (backfill off)", "fairshare (fairness weight 4, usage half-life 24 h)"]
    assert run["a"] == {
        "policy": "easy",
        "backfill": False,
        "fairness_weight": None,
        "half_life_h": None,
    }


def test_the_facilitys_own_history_is_replayed_on_its_own_nodes(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    alice = tenants.as_("alice")
    ran = [alice.submit(["true"], project="proj-a", gpus=g)["id"] for g in (4, 8, 2)]
    now = time.time()
    with live_server.db.session() as session:
        for i, job_id in enumerate(ran):
            job = session.get_one(Job, job_id)
            start, end = now - 3000 + 600 * i, now - 2000 + 600 * i
            switch_job_state(
                session, job, JobState.ADMITTED, now=start, actor="t", admitted_at=start
            )
            switch_job_state(session, job, JobState.RUNNING, now=start, actor="t", started_at=start)
            switch_job_state(session, job, JobState.SUCCEEDED, now=end, actor="t", ended_at=end)
    olga = tenants.headers("olga")
    body = {**SMALL, "workload": "history", "jobs": 50, "gpus": None}

    run = finished(api, olga, api.post("/whatif", json=body, headers=olga).json()["id"])

    assert run["state"] == "done", run["message"]
    assert run["replayed_jobs"] == 3  # the jobs that ran; none has waited or runs still
    assert run["replayed_gpus"] == 8  # the live server's one 8-GPU node
    for outcome in run["outcomes"]:
        assert outcome["unfinished"] == 0
        assert 0 < outcome["figures"]["utilisation"] <= 1


def test_history_with_nothing_finished_is_refused_naming_the_workload(
    api: httpx.Client, tenants: Tenants
) -> None:
    body = {**SMALL, "workload": "history", "gpus": None}

    refused = api.post("/whatif", json=body, headers=tenants.headers("olga"))

    assert_error(refused, 422, "workload", reason="no finished jobs")


def test_only_admins_and_operators_may_ask_or_look(
    api: httpx.Client, tenants: Tenants, admin_headers: dict[str, str]
) -> None:
    run = api.post("/whatif", json=SMALL, headers=admin_headers)
    assert run.status_code == 202, run.text
    owen = tenants.headers("owen")

    refusals = [
        api.post("/whatif", json=SMALL, headers=owen),
        api.get("/whatif", headers=owen),
        api.get(f"/whatif/{run.json()['id']}", headers=owen),
    ]

    for refused in refusals:
        assert_error(refused, 403, reason="only admin or operator may replay")
    assert finished(api, admin_headers, run.json()["id"])["state"] == "done"


def test_a_wrong_field_is_refused_with_its_name_and_nothing_runs(
    api: httpx.Client, tenants: Tenants
) -> None:
    olga = tenants.headers("olga")
    before = len(api.get("/whatif", headers=olga).json())
    cases = [
        ({**SMALL, "a": {"policy": "lottery"}}, "a.policy", "unknown policy 'lottery'"),
        ({**SMALL, "workload": "itp-cluster99"}, "workload", "unknown workload"),
        ({**SMALL, "b": {"policy": "slurm", "fairness_weight": 2}}, "b.fairness_weight", "only"),
        ({**SMALL, "b": {"policy": "fairshare", "backfill": False}}, "b.backfill", "only"),
        ({**SMALL, "b": SMALL["a"]}, "b", "same as A"),
        ({**SMALL, "workload": "itp-cluster01", "gpus": None}, "gpus", "how many GPUs"),
        ({**SMALL, "jobs": 1_000_000}, "jobs", None),
        ({**SMALL, "a": {"policy": "fairshare", "colour": "red"}}, "a.colour", None),
    ]

    for body, field, reason in cases:
        assert_error(api.post("/whatif", json=body, headers=olga), 422, field, reason=reason)
    assert len(api.get("/whatif", headers=olga).json()) == before
    assert_error(api.get("/whatif/999999", headers=olga), 404, reason="not found")


def test_a_failed_replay_keeps_its_reason_and_a_full_queue_refuses_more() -> None:
    runs = WhatIfRuns(clock=lambda: 1_700_000_000.0)
    ask = Ask("itp-merged", 10, Setting("fifo"), Setting("easy"), 64)
    gate = threading.Event()

    def unreadable() -> Workload:
        gate.wait(30)
        raise ValueError("the trace is unreadable")

    try:
        made = [runs.submit(ask, "olga", 0.0, unreadable) for _ in range(MAX_WAITING)]
        with pytest.raises(Conflict, match="already waiting"):
            runs.submit(ask, "olga", 0.0, unreadable)
    finally:
        gate.set()
        runs.shutdown()
    for run in made:
        failed = runs.get(run.id)
        assert failed.state == "failed"
        assert failed.message == "the trace is unreadable"
        assert failed.ended_at == 1_700_000_000.0
        assert failed.outcomes == ()
