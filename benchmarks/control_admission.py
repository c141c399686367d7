"""Control-loop benchmark: what one tick costs when it admits, or settles, many jobs at once.

A real database (SQLite file, and a real PostgreSQL server with --postgres) and the real control
loop; the executor is the tests' scripted one, so only the control plane is measured. Two
cases: jobs paid from an allocation (reserve at admission, meter and settle at the end: the
ledger path) and jobs of a project with no allocation under metering only (no ledger rows).
Prints a table and writes benchmarks/results/control_admission.json.

    .venv/bin/python benchmarks/control_admission.py [--jobs 512] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import FakeClock  # noqa: E402
from tests.control.fake_executor import FakeExecutor  # noqa: E402
from tests.postgres import create_database, postgres_server  # noqa: E402

from aifactory.control.loop import ControlLoop  # noqa: E402
from aifactory.domain.jobs import JobSpec  # noqa: E402
from aifactory.domain.tenancy import OrgKind  # noqa: E402
from aifactory.executors.base import Observation, Outcome, Phase  # noqa: E402
from aifactory.scheduler import Policy  # noqa: E402
from aifactory.services.auth import principal_of  # noqa: E402
from aifactory.services.bootstrap import bootstrap  # noqa: E402
from aifactory.services.jobs import Submission, submit_jobs  # noqa: E402
from aifactory.services.tenancy import (  # noqa: E402
    create_organisation,
    create_project,
    user_by_name,
)
from aifactory.store.db import Database  # noqa: E402
from aifactory.store.migrate import upgrade  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "control_admission.json"


def one_case(url: str, jobs: int, *, paid: bool) -> dict[str, float]:
    """Seconds for the tick that admits `jobs` jobs, and for the tick that ends them all."""
    upgrade(url)
    db = Database(url)
    clock = FakeClock()
    with db.session() as session:
        bootstrap(session, now=clock())
        admin = principal_of(session, user_by_name(session, "admin"))
        create_organisation(session, admin, name="lab", kind=OrgKind.UNIVERSITY, now=clock())
        create_project(session, admin, name="unpaid", organisation="lab", owner=None, now=0)
    executor = FakeExecutor(gpus=jobs, cpus=jobs)
    loop = ControlLoop(db, executor, Policy(), clock, lease_ttl_s=3600, enforce_budgets=paid)
    loop.tick()
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        # 1 GPU × 60 s each: 512 of them fit the default project's 100 GPU-h starter.
        spec = JobSpec(
            name="j", command=("true",), gpus_per_node=1, memory_mb_per_node=64, time_limit_s=60
        )
        project = "default" if paid else "unpaid"
        submit_jobs(session, [Submission(admin, spec, project, None)] * jobs, now=clock())
    admit = _timed(loop.tick)
    assert len(executor.started) == jobs, f"admitted {len(executor.started)} of {jobs}"
    for launch in executor.started:
        executor.observations[launch.job_id] = Observation(
            Phase.EXITED, clock(), clock() + 60, 0, Outcome.SUCCEEDED, "exited 0"
        )
    settle = _timed(loop.tick)
    db.dispose()
    return {"admit_tick_s": admit, "end_tick_s": settle}


def _timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=512)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": lambda name: f"sqlite:///{tmp}/{name}.db"}
        if args.postgres:
            admin_url = stack.enter_context(postgres_server())
            urls["postgresql"] = lambda name: create_database(admin_url, name)
        for store, make_url in urls.items():
            for paid in (False, True):
                figures = one_case(make_url(f"bench_{int(paid)}"), args.jobs, paid=paid)
                rows.append({"store": store, "ledger": paid, "jobs": args.jobs, **figures})
    print(f"{'store':<11} {'case':<28} {'admit tick':>11} {'end tick':>10}  (jobs: {args.jobs})")
    for row in rows:
        case = "allocation (reserve/settle)" if row["ledger"] else "metering only (no ledger)"
        admit, end = row["admit_tick_s"], row["end_tick_s"]
        print(f"{row['store']:<11} {case:<28} {admit:>9.2f} s {end:>8.2f} s")
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "control_admission",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {platform.python_implementation()} "
                f"{platform.python_version()}",
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
