"""Gateway benchmark: what the facility's `/v1` adds to calling a served model's engine directly.

A real facility (`python -m aifactory up`, SQLite, the local executor) trains the tiny Dutch
model (a recipe job, 30 steps), serves it (an endpoint with one replica: a job running the
recipe's engine on its Unix socket) and makes an inference key. Then, in one run:

- latency: one request at a time (`completions`, max_tokens 1, temperature 0), gateway and
  direct (the engine's socket, as the gateway reaches it) interleaved; p50/p95 and the p50
  difference;
- throughput: `--streams` concurrent streamed chat requests (max_tokens 16) for `--duration`
  seconds, through the gateway and directly; requests/s, the ratio, and tokens/s of the
  replica (it generates one request at a time, on the CPU here).

    .venv/bin/python benchmarks/gateway_overhead.py [--requests 200] [--streams 64] [--duration 10]

Prints a table and writes benchmarks/results/gateway_overhead.json. Run as root (the facility
runs its jobs as the project's identity; the direct path opens the replica's socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.process import FacilityProcess  # noqa: E402

from benchmarks.sandbox_start import summary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "gateway_overhead.json"
MODEL = "dutch"
TRAIN = [
    sys.executable, "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "tiny",
    "--steps", "30", "--eval-every", "30", "--checkpoint-every", "30",
]  # fmt: skip
SHORT = {"model": MODEL, "prompt": "Het is een mooie dag in ", "max_tokens": 1, "temperature": 0}
STREAM = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Vertel over de zee."}],
    "max_tokens": 16,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def serve(facility: FacilityProcess) -> tuple[str, Path]:
    """A key and the replica's socket, once the engine answers through the gateway."""
    with facility.client() as admin:
        admin.create_organisation("bench", "university")
        admin.create_project("nlp", "bench", owner="admin")
        job = admin.submit(TRAIN, project="nlp", cpus=1, memory_mb=2048, time_limit_s=600)
        assert admin.wait(job["id"], timeout_s=300)["state"] == "SUCCEEDED"
        made = admin.create_endpoint(MODEL, project="nlp", source_job=job["id"], cpus=1)
        key = admin.create_inference_key("bench", project="nlp")["key"]
    replica = made["running"][0]["job_id"]
    socket = facility.data_dir / "jobs" / str(replica) / "work" / "engine.sock"
    deadline = time.monotonic() + 120
    while True:
        answer = httpx.post(f"{facility.url}/v1/completions", json=SHORT, headers=_auth(key))
        if answer.status_code == 200:
            return key, socket
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def clients(facility: FacilityProcess, key: str, socket: Path) -> dict[str, httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return {
        "gateway": httpx.AsyncClient(
            base_url=facility.url, headers=_auth(key), timeout=120, limits=limits
        ),
        "direct": httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket), limits=limits),
            base_url="http://engine",
            timeout=120,
        ),
    }


async def latencies(made: dict[str, httpx.AsyncClient], requests: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {kind: [] for kind in made}
    for n in range(requests):
        for kind in made if n % 2 == 0 else reversed(list(made)):
            began = time.perf_counter()
            answer = await made[kind].post("/v1/completions", json=SHORT)
            found[kind].append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text
    return found


async def throughput(client: httpx.AsyncClient, streams: int, duration: float) -> dict[str, float]:
    """Requests/s and completion tokens/s with `streams` streams kept busy for `duration`."""
    done = tokens = 0
    stop = time.monotonic() + duration

    async def one_stream() -> None:
        nonlocal done, tokens
        while time.monotonic() < stop:
            async with client.stream("POST", "/v1/chat/completions", json=STREAM) as answer:
                assert answer.status_code == 200
                async for line in answer.aiter_lines():
                    if line.startswith("data: {") and '"usage": {' in line:
                        tokens += json.loads(line[6:])["usage"]["completion_tokens"]
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(one_stream() for _ in range(streams)))
    took = time.monotonic() - began
    return {"requests_per_s": done / took, "tokens_per_s": tokens / took, "requests": done}


async def measure(
    facility: FacilityProcess, key: str, socket: Path, args: argparse.Namespace
) -> dict[str, Any]:
    made = clients(facility, key, socket)
    try:
        timed = await latencies(made, args.requests)
        rates = {
            kind: await throughput(made[kind], args.streams, args.duration)
            for kind in ("direct", "gateway")
        }
    finally:
        for client in made.values():
            await client.aclose()
    return {"latency_ms": {k: summary(v) for k, v in timed.items()}, "throughput": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aifactory-bench-") as scratch:
        data = Path(scratch)
        facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=0)
        facility.start()
        try:
            key, socket = serve(facility)
            found = asyncio.run(measure(facility, key, socket, args))
        finally:
            facility.stop()  # first: its autoscaler would replace the replicas killed next
            facility.kill_leftover_jobs()
    latency, rates = found["latency_ms"], found["throughput"]
    result = {
        "benchmark": "gateway_overhead",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, python {platform.python_version()}",
        **found,
        "added_p50_ms": latency["gateway"]["p50"] - latency["direct"]["p50"],
        "throughput_ratio": rates["gateway"]["requests_per_s"] / rates["direct"]["requests_per_s"],
        "streams": args.streams,
        "duration_s": args.duration,
    }
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(result: dict[str, Any]) -> None:
    latency, rates = result["latency_ms"], result["throughput"]
    print(f"{'':<40}{'direct':>12}{'gateway':>12}")
    for q in ("p50", "p95"):
        label = f"one request, max_tokens 1, {q} (ms)"
        print(f"{label:<40}{latency['direct'][q]:>12.2f}{latency['gateway'][q]:>12.2f}")
    streams = result["streams"]
    for what in ("requests_per_s", "tokens_per_s"):
        label = f"{streams} streams, {what.replace('_per_s', '/s')}"
        print(f"{label:<40}{rates['direct'][what]:>12.1f}{rates['gateway'][what]:>12.1f}")
    print(f"added p50: {result['added_p50_ms']:.2f} ms; throughput ratio: "
          f"{result['throughput_ratio']:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
