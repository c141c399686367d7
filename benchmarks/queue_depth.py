"""Queue depth benchmark: the queue and a waiting job's explanation, read with 50,000 jobs waiting.

Starts a real facility (`python -m aifactory up`, SQLite, 8 virtual GPUs, 16 CPU slots) once to
make its database and admin token, stops it, and writes N waiting jobs (PENDING; 1/2/4/8 GPUs,
time limits of 10 min to 24 h, submitted over the last three days: `--spread-hours`; under
fairshare those waiting over 24 h are starving) straight into the database,
spread over ten funded projects, forty users and a slice in the `default` project, whose starter
allocation cannot pay for its largest jobs (those the control loop holds). Then it starts the
facility again: its control loop judges every waiting job (scheduler.verdict.decide), keeps the
verdicts in `job_verdicts` and starts what fits, so the reads below run while it works (`up`
answers only once its loop's first tick, which is that first round, is done). Once the first
round's verdicts are kept, a client on the same machine (the admin's token) times R
requests of each kind, interleaved:

- queue: `GET /api/v1/queue?limit=50`, the first page of the line;
- job: `GET /api/v1/jobs/{id}` of a random job waiting in line, whose `queue` (the
  explanation: place, reason, estimated start) must be there.

It prints p50/p95/p99/max per kind against the target (p95 under 200 ms), how long the first
round took, how often the loop kept its verdicts meanwhile (their pace follows their cost:
control.verdicts) and the facility's CPU use; then it times one round in-process on the same
database (snapshot, decide with and without verdicts, keeping them), and writes
benchmarks/results/queue_depth.json.

    .venv/bin/python benchmarks/queue_depth.py [--jobs 50000] [--requests 200] [--spread-hours 72]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.process import FacilityProcess  # noqa: E402

from aifactory.config import Settings  # noqa: E402
from aifactory.control.snapshot import read_snapshot  # noqa: E402
from aifactory.scheduler.verdict import decide  # noqa: E402
from aifactory.server import policy_from  # noqa: E402
from aifactory.services.allocations import Grant, open_allocation  # noqa: E402
from aifactory.store import verdicts as kept  # noqa: E402
from aifactory.store.db import Database  # noqa: E402
from aifactory.store.models import (  # noqa: E402
    Job,
    JobEvent,
    Member,
    Organisation,
    Programme,
    Project,
    User,
)

RESULTS = ROOT / "benchmarks" / "results" / "queue_depth.json"
TARGET_P95_MS = 200.0
GPUS, CPUS, MEMORY_MB = 8, 16, 262_144  # the one virtual node
PROJECTS, USERS = 10, 40
DEFAULT_SHARE = 0.05  # of the jobs, in the `default` project (starter allocation: 100 GPU-h)
DAY = 86400.0
LIMITS_S = (600, 1800, 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600)
SIZES = (1, 1, 1, 1, 2, 2, 4, 8)
CHUNK = 5000


@dataclass
class FlagWatch:
    """Samples the kept verdicts' time (facility flag) about once a second, read-only, so the
    pace at which the loop keeps them shows: a keep every PACE × its cost, at most 30 s."""

    path: Path
    seen: list[tuple[float, float]] = field(default_factory=list)  # (wall time, decided_at)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            value = read_flag(self.path)
            if value is not None and (not self.seen or self.seen[-1][1] != value):
                self.seen.append((time.time(), value))

    def gaps(self) -> list[float]:
        values = [v for _, v in self.seen]
        return [round(b - a, 2) for a, b in itertools.pairwise(values)]


def connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def read_flag(path: Path) -> float | None:
    with connect_ro(path) as db:
        row = db.execute(
            "SELECT value FROM facility_flags WHERE name = ?", (kept.DECIDED_AT,)
        ).fetchone()
    return None if row is None else float(row[0])


def count(path: Path, sql: str) -> int:
    with connect_ro(path) as db:
        return int(db.execute(sql).fetchone()[0])


def seed(
    db: Database, jobs: int, now: float, spread_s: float, rng: random.Random
) -> dict[str, int]:
    """Funded projects and their users, then `jobs` PENDING jobs in bulk (each with its submit
    event); returns how many jobs went to which kind of project."""
    with db.session() as session:
        admin = session.scalars(select(User).where(User.name == "admin")).one()
        default = session.scalars(select(Project).where(Project.name == "default")).one()
        research = session.scalars(select(Programme).where(Programme.name == "research")).one()
        orgs = [
            Organisation(name=f"uni-{i}", kind="university", created_at=now)
            for i in range(PROJECTS)
        ]
        session.add_all(orgs)
        session.flush()
        projects = [
            Project(name=f"proj-{i:02d}", organisation_id=orgs[i].id, created_at=now)
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
        for project in projects:  # enough for every job: none of theirs is held for money
            open_allocation(
                session,
                project=project,
                programme=research,
                grant=Grant(500_000.0, now - 30 * DAY, now + 365 * DAY),
                name=f"{project.name}-grant",
                proposal_id=None,
                actor="benchmark",
                reason="queue depth benchmark",
                now=now,
            )
        owners = [(projects[i % PROJECTS].id, u.id) for i, u in enumerate(users)]
        default_owner = (default.id, admin.id)
    in_default = 0
    for start in range(0, jobs, CHUNK):
        rows, events = [], []
        for k in range(start, min(start + CHUNK, jobs)):
            job_id = k + 1
            if rng.random() < DEFAULT_SHARE:
                project_id, user_id = default_owner
                in_default += 1
            else:
                project_id, user_id = rng.choice(owners)
            gpus = rng.choice(SIZES)
            submitted = now - spread_s * (1 - k / jobs) - rng.uniform(60, 90)
            rows.append(
                {
                    "id": job_id,
                    "project_id": project_id,
                    "user_id": user_id,
                    "name": f"train-{k % 97}",
                    "command": ["sleep", "600"],
                    "env": {},
                    "working_dir": None,
                    "gpus_per_node": gpus,
                    "nodes": 1,
                    "cpus_per_node": 2 * gpus,
                    "memory_mb_per_node": 8192 * gpus,
                    "gpu_model": None,
                    "time_limit_s": rng.choice(LIMITS_S),
                    "preemptible": False,
                    "priority": 0,
                    "idempotency_key": None,
                    "state": "PENDING",
                    "state_reason": None,
                    "placement": None,
                    "cancel_requested": False,
                    "attempts": 0,
                    "exit_code": None,
                    "submitted_at": submitted,
                    "admitted_at": None,
                    "started_at": None,
                    "ended_at": None,
                    "updated_at": submitted,
                    "uses_datasets": False,
                    "countries": None,
                    "network": "none",
                    "inputs": None,
                }
            )
            events.append(
                {
                    "job_id": job_id,
                    "at": submitted,
                    "from_state": None,
                    "to_state": "PENDING",
                    "reason": None,
                    "actor": f"user-{user_id}",
                }
            )
        with db.session() as session:
            session.execute(insert(Job), rows)
            session.execute(insert(JobEvent), events)
    return {"funded_projects": jobs - in_default, "default_project": in_default}


def wait_for_round(path: Path, after: float, jobs: int, timeout_s: float) -> tuple[float, int]:
    """Seconds until a round made after `after` kept verdicts on (nearly) every job, and how
    many rows it kept."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        decided = read_flag(path)
        if decided is not None and decided >= after:
            rows = count(path, "SELECT count(*) FROM job_verdicts")
            if rows >= 0.9 * jobs:
                return time.time() - after, rows
        time.sleep(0.2)
    raise AssertionError(f"no round kept verdicts within {timeout_s:.0f} s")


def figures(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
    }


def timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = call()
    return (time.perf_counter() - began) * 1000, response


@dataclass
class Measured:
    times: dict[str, list[float]] = field(default_factory=lambda: {"queue": [], "job": []})
    errors: list[str] = field(default_factory=list)  # "kind: status body…", timed all the same
    started: int = 0  # picked jobs the loop had started by then (picked again, untimed)


def measure(
    client: httpx.Client, waiting: list[int], requests: int, warmup: int, rng: random.Random
) -> Measured:
    """ms per request, the two kinds interleaved so a busy moment of the loop falls on both."""
    found = Measured()

    def queue() -> float:
        took, response = timed(partial(client.get, "/api/v1/queue", params={"limit": 50}))
        if response.status_code != 200 or len(response.json()) != 50:
            found.errors.append(f"queue: {response.status_code} {response.text[:200]}")
        return took

    def job() -> float:
        while True:
            job_id = rng.choice(waiting)
            took, response = timed(partial(client.get, f"/api/v1/jobs/{job_id}"))
            if response.status_code != 200:
                found.errors.append(f"job {job_id}: {response.status_code} {response.text[:200]}")
                return took
            body = response.json()
            if body["state"] != "PENDING":
                found.started += 1
                continue
            if body["queue"] is None or not body["queue"]["reason"]:
                found.errors.append(f"job {job_id}: no explanation: {body['queue']}")
            return took

    for _ in range(warmup):
        queue()
        job()
    found.errors.clear()
    for _ in range(requests):
        found.times["queue"].append(queue())
        found.times["job"].append(job())
    return found


def tracebacks(log: Path) -> list[str]:
    """The server's tracebacks, if the requests met errors: their last lines."""
    found, lines = [], log.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if not lines[j][:1].isspace()), i)
            found.append("\n".join(lines[max(i, end - 6) : end + 1]))
    return found


def round_in_process(url: str, data_dir: Path) -> dict[str, float]:
    """One control round's parts, timed here on the benchmark's database (as it was left):
    the snapshot, the policy alone (a round that keeps no verdicts), the policy and every
    verdict, and writing them all (as a loop does at the start of a lease term)."""
    db = Database(url)
    policy = policy_from(Settings(data_dir=data_dir))
    now = time.time()
    out: dict[str, float] = {}
    began = time.perf_counter()
    with db.read() as session:
        snapshot = read_snapshot(
            session, now, policy.half_life_s, holds=True, budgets_enforced=True
        )
    out["snapshot_s"] = time.perf_counter() - began
    began = time.perf_counter()
    decide(snapshot, policy, now, with_verdicts=False)
    out["decide_without_verdicts_s"] = time.perf_counter() - began
    began = time.perf_counter()
    found = decide(snapshot, policy, now, with_verdicts=True)
    out["decide_with_verdicts_s"] = time.perf_counter() - began
    assert found.verdicts is not None
    rows = {
        i: kept.Kept(e.held, e.position, e.reason, e.estimated_start)
        for i, e in found.verdicts.items()
    }
    began = time.perf_counter()
    with db.session() as session:
        kept.keep(session, rows, now=now, previous=None)
        session.rollback()  # timed, not kept: the database stays as the facility left it
    out["keep_all_s"] = time.perf_counter() - began
    db.dispose()
    out["pending"] = len(snapshot.pending)
    out["held"] = len(snapshot.held)
    return {k: round(v, 3) for k, v in out.items()}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(16)
    path = work / "queue.db"
    url = f"sqlite:///{path}"
    data_dir = work / "facility"
    data_dir.mkdir()
    facility = FacilityProcess(data_dir, url, virtual_gpus=GPUS, cpus=CPUS)
    facility.args += ["--memory-mb", str(MEMORY_MB)]
    facility.start(timeout_s=60)  # the database, the admin and their token
    facility.stop()
    db = Database(url)
    began = time.perf_counter()
    mix = seed(db, args.jobs, time.time(), args.spread_hours * 3600, rng)
    db.dispose()
    seed_s = time.perf_counter() - began
    print(f"seeded {args.jobs} waiting jobs in {seed_s:.1f} s ({mix})", flush=True)

    # `up` answers once its loop's first tick is done (server._control_loop_running): with a
    # deep queue that tick is the first round of verdicts, so health waits for it.
    launched = time.time()
    watch = FlagWatch(path)
    try:
        facility.start(timeout_s=args.round_timeout)
        healthy_s = time.time() - launched
        print(f"facility answers {healthy_s:.1f} s after start", flush=True)
        first_s, kept_rows = wait_for_round(path, launched, args.jobs, args.round_timeout)
        print(f"first round kept {kept_rows} verdicts {first_s:.1f} s after start", flush=True)
        watch.start()
        with connect_ro(path) as ro:
            waiting = [
                row[0]
                for row in ro.execute(
                    "SELECT v.job_id FROM job_verdicts v JOIN jobs j ON j.id = v.job_id "
                    "WHERE NOT v.held AND v.position > 50 AND j.state = 'PENDING'"
                )
            ]
        assert facility.proc is not None
        proc = psutil.Process(facility.proc.pid)
        cpu_before, wall_before = proc.cpu_times(), time.perf_counter()
        headers = {"Authorization": f"Bearer {facility.token}"}
        with httpx.Client(base_url=facility.url, headers=headers, timeout=120) as client:
            measured = measure(client, waiting, args.requests, args.warmup, rng)
        cpu_after, wall = proc.cpu_times(), time.perf_counter() - wall_before
        busy = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / wall
        watch.stop()
        state = {
            "running": count(
                path, "SELECT count(*) FROM jobs WHERE state IN ('ADMITTED', 'RUNNING')"
            ),
            "pending": count(path, "SELECT count(*) FROM jobs WHERE state = 'PENDING'"),
            "held": count(path, "SELECT count(*) FROM jobs WHERE state = 'HELD'"),
            "verdicts": count(path, "SELECT count(*) FROM job_verdicts"),
        }
    finally:
        watch.stop()
        facility.stop()
        facility.kill_leftover_jobs()
    gaps = watch.gaps()
    loop = {
        "first_round_s": round(first_s, 1),
        "first_round_rows": kept_rows,
        "measuring_s": round(wall, 1),
        # rounds that kept verdicts, seen while measuring (one: none since the first): a keep
        # comes PACE × its cost after the last, at most MAX_AGE_S, once a tick gets to it
        "verdict_rounds_seen": len(watch.seen),
        "keep_gaps_s": gaps,
        "facility_cpu_while_measuring": round(busy, 2),
        "picked_jobs_started_meanwhile": measured.started,
    }
    return {
        "seed_s": round(seed_s, 1),
        "mix": mix,
        "start_to_healthy_s": round(healthy_s, 1),
        "loop": loop,
        "after": state,
        "kinds": {kind: figures(ms) for kind, ms in measured.times.items()},
        "errors": measured.errors,
        "server_tracebacks": tracebacks(data_dir / "server-2.log") if measured.errors else [],
        "round_in_process": round_in_process(url, data_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200, help="per kind")
    parser.add_argument(
        "--spread-hours",
        type=float,
        default=72.0,
        help="jobs were submitted over this many hours up to now (fairshare: a job waiting "
        "over 24 h is starving and gets a hard reservation)",
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--round-timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, help="a new directory to keep (default: temporary)")
    args = parser.parse_args()
    if args.work is not None:  # kept: the facility's logs and database stay to look at
        args.work.mkdir(parents=True)
        found = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="af-queue-", ignore_cleanup_errors=True) as tmp:
            found = run(args, Path(tmp))
    met = not found["errors"] and all(k["p95_ms"] < TARGET_P95_MS for k in found["kinds"].values())
    report = {
        "benchmark": "queue_depth",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "database": "sqlite",
        "facility": {"virtual_gpus": GPUS, "cpus": CPUS, "memory_mb": MEMORY_MB},
        "jobs_waiting": args.jobs,
        "submitted_over_hours": args.spread_hours,
        "requests_per_kind": args.requests,
        "target": {"p95_ms": TARGET_P95_MS},
        "met": met,
        **found,
    }
    print(f"\n{args.jobs} jobs waiting, {args.requests} requests each (ms):")
    print(f"  {'kind':<40} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    labels = {"queue": "GET /api/v1/queue?limit=50", "job": "GET /api/v1/jobs/{id} (waiting)"}
    for kind, f in found["kinds"].items():
        flag = "" if f["p95_ms"] < TARGET_P95_MS else "  <-- over target"
        print(
            f"  {labels[kind]:<40} {f['p50_ms']:>7} {f['p95_ms']:>7} {f['p99_ms']:>7}"
            f" {f['max_ms']:>7}{flag}"
        )
    loop = found["loop"]
    print(
        f"first round: {loop['first_round_s']} s; {loop['verdict_rounds_seen']} round(s) of"
        f" verdicts seen in {loop['measuring_s']} s of measuring (gaps {loop['keep_gaps_s']} s);"
        f" facility CPU {loop['facility_cpu_while_measuring']} cores"
    )
    print(f"one round in-process: {found['round_in_process']}")
    if found["errors"]:
        print(f"{len(found['errors'])} requests failed, e.g. {found['errors'][0]}")
        for trace in found["server_tracebacks"][:3]:
            print(trace)
    print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
