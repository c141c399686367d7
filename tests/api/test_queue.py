"""Why a job waits and when it may start, through the API (positions count every job)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aifactory.client.client import Client
from aifactory.domain.jobs import JobState
from aifactory.store.jobs import lock_job, switch_job_state
from tests.api.helpers import Tenants
from tests.conftest import LiveServer


def test_show_and_queue_explain_waiting_jobs(admin: Client) -> None:
    first = admin.submit(["train"], gpus=8, time_limit_s=3600)
    second = admin.submit(["train"], gpus=8, time_limit_s=600)
    never = admin.submit(["x"], gpus=8, nodes=1, time_limit_s=60, cpus=32)  # fits, just
    shown = admin.job(second["id"])["queue"]
    assert shown["position"] == 2
    assert shown["reason"].startswith("fits now")  # nothing runs in this test server
    queued = admin.queue()
    # Fair-share order: smallest expected GPU time first (no history yet: by time limits).
    assert [j["id"] for j in queued] == [never["id"], second["id"], first["id"]]
    starts = [datetime.fromisoformat(j["queue"]["estimated_start_at"]) for j in queued]
    assert (starts[1] - starts[0]).total_seconds() == 60  # behind the first one's limit
    assert (starts[2] - starts[1]).total_seconds() == 600
    admin.cancel(never["id"])
    assert admin.job(never["id"])["queue"] is None  # not waiting any more
    assert admin.queue()[0]["queue"]["position"] == 1


def test_the_queue_lists_only_your_jobs_but_counts_everyone(
    live_server: LiveServer, tenants: Tenants, clients: Callable[[str], Client]
) -> None:
    bob, alice = clients(tenants.tokens["bob"]), clients(tenants.tokens["alice"])
    bob.submit(["a"], gpus=8, project="proj-b")
    mine = alice.submit(["b"], gpus=8, project="proj-a")
    seen = alice.queue()
    assert [j["id"] for j in seen] == [mine["id"]]
    assert seen[0]["queue"]["position"] == 2


def test_held_jobs_are_in_the_queue_marked_held_with_what_releases_them(
    live_server: LiveServer, admin: Client
) -> None:
    waiting = admin.submit(["train"], gpus=8, time_limit_s=600)
    held = admin.submit(["train"], gpus=8, time_limit_s=600)
    why = "budget: allocation default-starter has 0.0 GPU-h left, job needs up to 1.3"
    with live_server.db.session() as session:
        row = lock_job(session, held["id"])
        assert row is not None
        switch_job_state(session, row, JobState.HELD, now=1.0, actor="control", reason=why)
    queued = admin.queue()
    assert [j["id"] for j in queued] == [waiting["id"], held["id"]]  # after the line
    assert queued[1]["queue"] == {
        "position": None,
        "held": True,
        "reason": why,
        "estimated_start_at": None,
    }
    assert queued[0]["queue"]["held"] is False
    assert admin.job(held["id"])["queue"]["held"] is True
