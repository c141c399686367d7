"""Portal benchmark: server response time of each main page on a facility with 100,000 jobs.

Seeds a database (SQLite by default; `--postgres` for a real PostgreSQL server the script
starts) with a facility's worth of history — 16 nodes × 8 GPUs, 40 projects, 120 users,
100,000 jobs over 60 days with their state events, usage records and audit events, the
control loop's minute samples for those 60 days, some
running and some waiting — then serves the portal over it with uvicorn (the control loop is not
running: only the pages are measured) and times GET requests per page from a client on the
same machine, signed in as an admin (who sees everything: the largest pages). Prints a table
and writes benchmarks/results/portal_pages.json.

    .venv/bin/python benchmarks/portal_pages.py [--jobs 100000] [--repeat 20] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import create_database, free_port, postgres_server  # noqa: E402

from aifactory.api.app import create_app  # noqa: E402
from aifactory.api.deps import AppState  # noqa: E402
from aifactory.domain.nodes import Node as NodeValue  # noqa: E402
from aifactory.domain.resources import Resources  # noqa: E402
from aifactory.governance import audit  # noqa: E402
from aifactory.governance.audit import NewEvent  # noqa: E402
from aifactory.services.bootstrap import bootstrap  # noqa: E402
from aifactory.store.db import Database  # noqa: E402
from aifactory.store.migrate import upgrade  # noqa: E402
from aifactory.store.models import (  # noqa: E402
    FacilitySample,
    Job,
    JobEvent,
    Member,
    Organisation,
    Project,
    UsageRecord,
    User,
)
from aifactory.store.nodes import upsert_node  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "portal_pages.json"
NODES, GPUS_PER_NODE = 16, 8
PROJECTS, USERS = 40, 120
DAY = 86400.0
TARGET_MS = 200.0


def seed(db: Database, jobs: int, now: float, rng: random.Random) -> dict[str, Any]:
    """A facility's history, written in bulk; returns ids the pages will be asked for."""
    with db.session() as session:
        token = bootstrap(session, now=now - 61 * DAY)
        for n in range(NODES):
            node = NodeValue(
                id=f"gpu-{n:02d}",
                site="NL",
                gpu_model="h100",
                capacity=Resources(gpus=GPUS_PER_NODE, cpus=128, memory_mb=1_024_000),
            )
            ids = [str(i) for i in range(GPUS_PER_NODE)]
            upsert_node(session, node, executor="local", gpu_ids=ids, now=now)
        orgs = [Organisation(name=f"org-{i}", kind="university", created_at=now) for i in range(10)]
        session.add_all(orgs)
        session.flush()
        projects = [
            Project(name=f"proj-{i:02d}", organisation_id=orgs[i % 10].id, created_at=now)
            for i in range(PROJECTS)
        ]
        users = [
            User(name=f"user-{i:03d}", email=None, facility_role="user", created_at=now)
            for i in range(USERS)
        ]
        session.add_all([*projects, *users])
        session.flush()
        session.add_all(
            Member(
                project_id=projects[i % PROJECTS].id, user_id=u.id, role="member", created_at=now
            )
            for i, u in enumerate(users)
        )
        project_of = {u.id: projects[i % PROJECTS].id for i, u in enumerate(users)}
        user_ids = [u.id for u in users]
    assert token is not None
    free = {(f"gpu-{n:02d}", g) for n in range(NODES) for g in range(GPUS_PER_NODE)}
    first_id = 1
    for start in range(0, jobs, 5000):
        rows, events, usage = [], [], []
        for k in range(start, min(start + 5000, jobs)):
            job_id = first_id + k
            user = rng.choice(user_ids)
            submitted = now - 60 * DAY * (1 - k / jobs) + rng.uniform(0, 30)
            waited = rng.expovariate(1 / 600)
            ran = rng.expovariate(1 / 3600)
            gpus = rng.choice([1, 1, 1, 2, 4, 8])
            state, placement = "SUCCEEDED", None
            admitted: float | None = submitted + waited
            started: float | None = admitted + 2
            ended: float | None = started + ran
            if jobs - k <= 400:  # the newest: some run, the rest wait
                node_gpus = sorted(
                    g for g in free if len([x for x in free if x[0] == g[0]]) >= gpus
                )
                if node_gpus and rng.random() < 0.5:
                    node = node_gpus[0][0]
                    held = sorted(g for n, g in free if n == node)[:gpus]
                    free.difference_update((node, g) for g in held)
                    placement = {
                        node: {
                            "gpus": gpus,
                            "cpus": 8,
                            "memory_mb": 64_000,
                            "gpu_ids": [str(g) for g in held],
                            "cpu_ids": [],
                        }
                    }
                    state, ended = "RUNNING", None
                else:
                    state, admitted, started, ended = "PENDING", None, None, None
            elif rng.random() < 0.08:
                state = rng.choice(["FAILED", "CANCELLED", "TIMEOUT"])
            rows.append(
                {
                    "id": job_id,
                    "project_id": project_of[user],
                    "user_id": user,
                    "name": f"train-{k % 97}",
                    "command": ["python", "train.py"],
                    "env": {},
                    "working_dir": None,
                    "gpus_per_node": gpus,
                    "nodes": 1,
                    "cpus_per_node": 8,
                    "memory_mb_per_node": 64_000,
                    "gpu_model": None,
                    "time_limit_s": 86400,
                    "preemptible": False,
                    "priority": 0,
                    "idempotency_key": None,
                    "state": state,
                    "state_reason": None,
                    "placement": placement,
                    "cancel_requested": False,
                    "attempts": 0 if state == "PENDING" else 1,
                    "exit_code": 0 if state == "SUCCEEDED" else None,
                    "submitted_at": submitted,
                    "admitted_at": admitted,
                    "started_at": started,
                    "ended_at": ended,
                    "updated_at": ended or started or submitted,
                    "uses_datasets": False,
                    "countries": None,
                }
            )
            events.append(
                {
                    "job_id": job_id,
                    "at": submitted,
                    "from_state": None,
                    "to_state": "PENDING",
                    "reason": None,
                    "actor": "user",
                }
            )
            if started is not None:
                events.append(
                    {
                        "job_id": job_id,
                        "at": started,
                        "from_state": "ADMITTED",
                        "to_state": "RUNNING",
                        "reason": None,
                        "actor": "control",
                    }
                )
            if ended is not None and started is not None:
                events.append(
                    {
                        "job_id": job_id,
                        "at": ended,
                        "from_state": "RUNNING",
                        "to_state": state,
                        "reason": None,
                        "actor": "control",
                    }
                )
                usage.append(
                    {
                        "job_id": job_id,
                        "attempt": 1,
                        "project_id": project_of[user],
                        "allocation_id": None,
                        "gpu_model": "h100",
                        "gpus": gpus,
                        "cpus": 8,
                        "started_at": started,
                        "ended_at": ended,
                        "gpu_s": int(gpus * ran),
                        "cpu_s": int(8 * ran),
                        "energy_j": gpus * ran * 550.0,
                        "energy_measured": False,
                        "gpu_cents": int(gpus * ran / 36),
                        "cpu_cents": 0,
                        "subsidy_cents": 0,
                        "booked_at": ended,
                    }
                )
        with db.session() as session:
            session.execute(insert(Job), rows)
            session.execute(insert(JobEvent), events)
            if usage:
                session.execute(insert(UsageRecord), usage)
            audit.append(
                session,
                [
                    NewEvent(
                        f"user-{r['user_id']}",
                        "job.submit",
                        f"job:{r['id']}",
                        None,
                        "ok",
                        r["project_id"],
                        None,
                    )
                    for r in rows
                ],
                at=rows[-1]["submitted_at"],
            )
    samples = [
        {
            "at": now - 60 * DAY + minute * 60.0,
            "gpus_total": NODES * GPUS_PER_NODE,
            "gpus_busy": rng.randint(NODES * GPUS_PER_NODE // 2, NODES * GPUS_PER_NODE),
            "running": rng.randint(20, 80),
            "waiting": rng.randint(0, 300),
        }
        for minute in range(60 * 24 * 60)
    ]
    with db.session() as session:
        session.execute(insert(FacilitySample), samples)  # the control loop's, once a minute
    with db.read() as session:
        running = session.scalars(select(Job.id).where(Job.state == "RUNNING").limit(1)).first()
        done = session.scalars(select(Job.id).where(Job.state == "SUCCEEDED").limit(1)).first()
        waiting = session.scalars(select(Job.id).where(Job.state == "PENDING").limit(1)).first()
    return {"token": token, "running_job": running, "finished_job": done, "pending_job": waiting}


@contextmanager
def serving(db: Database, tmp: Path) -> Iterator[str]:
    state = AppState(
        db=db,
        clock=time.time,
        locate_log=lambda job: tmp / f"{job}.log",
        on_submit=lambda: None,
        ready=lambda: True,
        data_root=tmp,
        jobs_dir=tmp,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sign_in(client: httpx.Client, token: str) -> None:
    client.get("/login")
    form = {"token": token, "login_csrf": client.cookies.get("aifactory_login") or "", "next": "/"}
    assert client.post("/login/token", data=form).status_code == 303


def pages(seeded: dict[str, Any]) -> list[str]:
    return [
        "/",
        "/?window=30d",
        "/jobs",
        "/jobs?state=RUNNING",
        "/jobs?state=PENDING",
        f"/jobs/{seeded['pending_job']}",
        f"/jobs/{seeded['pending_job']}/queue",
        f"/jobs/{seeded['running_job']}",
        f"/jobs/{seeded['finished_job']}",
        "/nodes",
        "/projects",
        "/projects/proj-07",
        "/allocations",
        "/usage",
        "/proposals",
        "/datasets",
        "/audit",
        "/allocations/default-starter",
        "/usage/invoices",
        "/whatif",
        "/account",
    ]


def time_pages(client: httpx.Client, paths: list[str], repeat: int) -> list[dict[str, Any]]:
    found = []
    for path in paths:
        first = client.get(path)  # warm: templates compiled, caches filled
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - began) * 1000)
        found.append(
            {
                "page": path,
                "status": response.status_code,
                "first_status": first.status_code,
                "bytes": len(response.content),
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(sorted(times)[max(0, int(0.95 * len(times)) - 1)], 1),
                "max_ms": round(max(times), 1),
            }
        )
    return found


def run(database: str, url: str, jobs: int, repeat: int, tmp: Path) -> dict[str, Any]:
    upgrade(url)
    db = Database(url)
    began = time.perf_counter()
    seeded = seed(db, jobs, time.time(), random.Random(7))
    seed_s = time.perf_counter() - began
    print(f"[{database}] seeded {jobs} jobs in {seed_s:.0f} s", flush=True)
    with serving(db, tmp) as base, httpx.Client(base_url=base, timeout=60) as client:
        sign_in(client, seeded["token"])
        results = time_pages(client, pages(seeded), repeat)
    db.dispose()
    return {"database": database, "jobs": jobs, "seed_s": round(seed_s, 1), "pages": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    runs = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        runs.append(run("sqlite", f"sqlite:///{tmp / 'portal.db'}", args.jobs, args.repeat, tmp))
        if args.postgres:
            server = stack.enter_context(postgres_server())
            url = create_database(server, "portal")
            runs.append(run("postgresql", url, args.jobs, args.repeat, tmp))
    report = {
        "benchmark": "portal_pages",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "target_ms": TARGET_MS,
        "runs": runs,
    }
    for r in runs:
        print(f"\n{r['database']}, {r['jobs']} jobs (p50 / p95 / max ms, admin):")
        for p in r["pages"]:
            flag = "" if p["p95_ms"] < TARGET_MS and p["status"] == 200 else "  <-- over target"
            if p["status"] != 200:
                flag = f"  <-- HTTP {p['status']}"
            print(f"  {p['page']:<28} {p['p50_ms']:>7} {p['p95_ms']:>7} {p['max_ms']:>7}{flag}")
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
