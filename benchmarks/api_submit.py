"""API benchmark: sustained job submissions per second and submit latency (p50/p99).

Starts a real facility (`python -m aifactory up`, admission paused so the jobs stay PENDING
and only the API path is measured) on SQLite and on a real PostgreSQL server, drives
POST /api/v1/jobs from a separate process with a closed-loop load generator, and prints and
writes JSON (benchmarks/results/api_submit.json).

    .venv/bin/python benchmarks/api_submit.py [--duration 10] [--concurrency 16] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.process import FacilityProcess  # noqa: E402
from tests.postgres import create_database, postgres_server  # noqa: E402

from benchmarks.loadgen import post_json, run_load  # noqa: E402

JOB = {
    "command": ["python", "train.py", "--epochs", "3"],
    "gpus": 1,
    "cpus": 2,
    "memory_mb": 8192,
    "time_limit_s": 3600,
    "name": "bench",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _load_in_child(
    url: str, token: str, concurrency: int, warmup: float, duration: float, out: Any
) -> None:
    request = post_json(url, "/api/v1/jobs", token, JOB)
    result = run_load(
        url, lambda: request, concurrency=concurrency, warmup_s=warmup, duration_s=duration
    )
    out.send({"latencies": result.latencies_s, "statuses": result.statuses})


def measure(
    url: str, token: str, concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(
        target=_load_in_child, args=(url, token, concurrency, warmup, duration, send)
    )
    child.start()
    data = receive.recv()
    child.join()
    latencies = data["latencies"]
    ok = data["statuses"].get(201, 0)
    return {
        "concurrency": concurrency,
        "duration_s": duration,
        "requests": len(latencies),
        "created": ok,
        "errors": len(latencies) - ok,
        "submissions_per_s": round(ok / duration, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def run_backend(
    name: str, database_url: str, workers: int, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    data_dir = work / f"{name}-{workers}"
    data_dir.mkdir()
    facility = FacilityProcess(data_dir, database_url, virtual_gpus=8, cpus=64)
    facility.args += ["--paused", "--workers", str(workers)]
    facility.start()
    try:
        assert facility.token is not None
        figures = measure(
            facility.url, facility.token, args.concurrency, args.warmup, args.duration
        )
        with facility.client() as api:
            stored = len(api.jobs(limit=1000, state="PENDING"))
        figures["backend"] = name
        figures["workers"] = workers
        figures["stored_check"] = stored > 0
        return figures
    finally:
        facility.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", help="API worker processes to try")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/api_submit.json")
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="af-bench-")))
        admin: str | None = None
        for backend in args.backends.split(","):
            for workers in [int(w) for w in args.workers.split(",")]:
                if backend == "sqlite":
                    url = f"sqlite:///{work / f'bench-{workers}.db'}"
                else:
                    admin = admin or stack.enter_context(postgres_server())
                    url = create_database(admin, f"bench_{workers}")
                results.append(run_backend(backend, url, workers, work, args))
                print(_row(results[-1]), flush=True)
    report = {
        "benchmark": "api_submit",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": multiprocessing.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "target": {"submissions_per_s": 1000, "p99_ms": 50},
        "sbatch": "not measured: no Slurm cluster in this run (issue #6 adds it)",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['backend']:<11} {r['workers']} worker(s) {r['submissions_per_s']:>8.1f} "
        "submissions/s  "
        f"p50 {r['p50_ms']:>6.2f} ms  p99 {r['p99_ms']:>6.2f} ms  "
        f"(concurrency {r['concurrency']}, {r['requests']} requests, "
        f"{r['errors']} errors)"
    )


if __name__ == "__main__":
    main()
