"""Sessions benchmark: how soon a notebook answers, and what the facility's proxy adds to it.

A real facility (`python -m aifactory up`, SQLite, the local executor, the real JupyterLab in
the job's sandbox). In one run:

- start: from `POST /sessions` to JupyterLab's page answering 200 through the proxy (the
  session is queued, admitted, started, its server comes up, the link's page is shown and its
  button trades the ticket for the session's cookie), for `--starts` sessions one after
  another on an idle facility;
- a 1 MB notebook saved (`PUT api/contents`), `--saves` times, through the proxy and directly
  on the server's socket (with its token, as the proxy reaches it), interleaved; p50/p99;
- a kernel round trip (an `execute_request` of `pass` until its `execute_reply`, on one open
  kernel WebSocket each way), `--trips` times, interleaved; p50/p99;
- the same two through the relay a Slurm node puts in front of the server (the batch
  script's own commands, `executors.slurm.script.relay_commands`: socat in its bubblewrap,
  mutual TLS with fresh keys), on this host, without the proxy: what the relay adds to the
  direct path (on a Slurm facility the proxy's share comes on top, plus the network's).

    .venv/bin/python benchmarks/session_proxy.py [--starts 3] [--saves 50] [--trips 300]

Prints a table and writes benchmarks/results/session_proxy.json. Run as root (the facility
runs jobs as the project's identity; the direct path opens the server's socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect, unix_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.process import FacilityProcess  # noqa: E402

from aifactory.client import Client  # noqa: E402
from aifactory.domain import interactive  # noqa: E402
from aifactory.executors.job_socket import open_job_socket  # noqa: E402
from aifactory.executors.slurm import relay  # noqa: E402
from aifactory.executors.slurm.script import Relay, Where, relay_commands  # noqa: E402
from aifactory.store.db import Database  # noqa: E402
from aifactory.store.models import InteractiveSession  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "session_proxy.json"


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean": statistics.fmean(ordered),
    }


def start_and_open(facility: FacilityProcess, api: Client) -> tuple[float, int, httpx.Client]:
    """Seconds from start to JupyterLab answering through the proxy; the session and a
    client that holds its cookie."""
    began = time.perf_counter()
    sid = api.start_session(memory_mb=2048)["id"]
    while api.session(sid)["state"] != "RUNNING":
        time.sleep(0.05)
    parts = urlsplit(api.open_session(sid))
    browser = httpx.Client(
        base_url=facility.url, headers={"Host": parts.netloc}, timeout=60, follow_redirects=False
    )
    assert browser.get(f"{parts.path}?{parts.query}").status_code == 200  # whose, as whom
    entered = browser.post(
        parts.path,
        data={"ticket": dict(parse_qsl(parts.query))["ticket"]},
        headers={"Origin": f"http://{parts.netloc}"},
    )  # its button
    assert entered.status_code == 303, entered.text
    browser.headers["Cookie"] = entered.headers["set-cookie"].split(";")[0]
    while browser.get(f"/sessions/{sid}/lab", headers={"Accept": "text/html"}).status_code != 200:
        time.sleep(0.05)
    return time.perf_counter() - began, sid, browser


def direct(facility: FacilityProcess, sid: int) -> tuple[httpx.Client, str, int]:
    """A client of the server's own socket (as the proxy reaches it), its token, the fd."""
    with Database(f"sqlite:///{facility.data_dir / 'aifactory.db'}").read() as session:
        row = session.get(InteractiveSession, sid)
        assert row is not None
        token = row.notebook_token
    socket = facility.data_dir / "jobs" / str(sid) / "work" / interactive.SOCKET
    fd = open_job_socket(socket)
    client = httpx.Client(
        transport=httpx.HTTPTransport(uds=f"/proc/self/fd/{fd}"),
        base_url=f"http://s{sid}.localhost",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    return client, token, fd


RELAY_PORTS = (43000, 43099)


def relayed(
    facility: FacilityProcess, sid: int, token: str, keys: Path
) -> tuple[httpx.Client, ssl.SSLContext, int, subprocess.Popen[bytes]]:
    """The server behind a Slurm node's relay, started by the batch script's own commands as
    the session's identity (as on a node); a client of it (the facility's certificate, the
    server's token), its TLS context, port."""
    socket = facility.data_dir / "jobs" / str(sid) / "work" / interactive.SOCKET
    owner = socket.parent.stat()
    for above in (
        facility.data_dir,
        socket.parent.parent.parent,
        socket.parent.parent,
        keys.parent,
    ):
        above.chmod(0o711)  # traversable by the identity, as the Slurm executor lays them out
    keys.mkdir(mode=0o711)
    where = Where(keys, keys)
    where.own.mkdir()
    os.chown(where.own, owner.st_uid, owner.st_gid)
    server, facility_key = relay.self_signed("aifactory relay"), relay.self_signed("aifactory")
    for name, content in (
        (relay.SERVER_KEY, server.both), (relay.SERVER_CERT, server.certificate),
        (relay.CLIENT_KEY, facility_key.both), (relay.CLIENT_CERT, facility_key.certificate),
    ):  # fmt: skip
        where.relay_file(name).write_bytes(content)
    os.chown(where.relay_file(relay.SERVER_KEY), owner.st_uid, owner.st_gid)
    where.relay_file(relay.CLIENT_KEY).chmod(0o400)  # the facility's
    harness = (
        f"dir={where.own}\n"
        'record() { printf \'%s\\n\' "$2" > "$dir/$1"; }\n'
        'finish() { exit "$1"; }\n'
        "relay=\n" + relay_commands(Relay(socket, RELAY_PORTS), where) + 'wait "$relay"\n'
    )
    process = subprocess.Popen(
        ["bash", "-c", harness], start_new_session=True, user=owner.st_uid, group=owner.st_gid,
        extra_groups=[],
    )  # fmt: skip
    record = where.own / relay.RECORD
    deadline = time.monotonic() + 10
    while not record.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the relay did not start")
        time.sleep(0.05)
    port = json.loads(record.read_text())["port"]
    context = relay.client_context(keys)
    client = httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        verify=context,
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    return client, context, port, process


def notebook_of(size: int) -> dict[str, Any]:
    line = "x" * 99 + "\n"
    source = line * (size // len(line))
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}
    cell["execution_count"] = None
    return {
        "type": "notebook",
        "format": "json",
        "content": {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }


def saves(
    proxied: httpx.Client, own: httpx.Client, relaying: httpx.Client, sid: int, n: int
) -> dict[str, list[float]]:
    body = json.dumps(notebook_of(1_000_000)).encode()
    path = f"/sessions/{sid}/api/contents/bench.ipynb"
    timed: dict[str, list[float]] = {"proxy": [], "direct": [], "relay": []}
    headers = {"Content-Type": "application/json"}
    for _ in range(n):
        for name, client in (("proxy", proxied), ("direct", own), ("relay", relaying)):
            began = time.perf_counter()
            answer = client.put(path, content=body, headers=headers)
            timed[name].append((time.perf_counter() - began) * 1000)
            assert answer.status_code in (200, 201), answer.text
    return timed


async def round_trip(ws: ClientConnection) -> float:
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id, "msg_type": "execute_request", "username": "bench",
            "session": "bench", "version": "5.3", "date": "",
        },
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {
            "code": "pass", "silent": True, "store_history": False, "user_expressions": {},
            "allow_stdin": False,
        },
    }  # fmt: skip
    began = time.perf_counter()
    await ws.send(json.dumps(request))
    while True:
        message = json.loads(await ws.recv())
        if (
            message.get("msg_type") == "execute_reply"
            and message.get("parent_header", {}).get("msg_id") == msg_id
        ):
            return (time.perf_counter() - began) * 1000


async def trips(
    facility: FacilityProcess,
    proxied: httpx.Client,
    sid: int,
    token: str,
    fd: int,
    relay_at: tuple[int, ssl.SSLContext],
    n: int,
) -> dict[str, list[float]]:
    kernel = proxied.post(f"/sessions/{sid}/api/kernels", json={"name": "python3"}).json()["id"]
    host = str(proxied.headers["Host"])
    path = f"/sessions/{sid}/api/kernels/{kernel}/channels?session_id="  # one per connection
    timed: dict[str, list[float]] = {"proxy": [], "direct": [], "relay": []}
    port, context = relay_at
    async with (
        connect(
            f"ws://{host}{path}proxied", host="127.0.0.1", port=facility.port,
            origin=f"http://{host}",  # type: ignore[arg-type]
            additional_headers={"Cookie": str(proxied.headers["Cookie"])}, max_size=None,
        ) as via,
        unix_connect(
            f"/proc/self/fd/{fd}", uri=f"ws://{host}{path}direct",
            additional_headers={"Authorization": f"token {token}"}, max_size=None,
        ) as own,
        connect(
            f"wss://127.0.0.1:{port}{path}relayed", ssl=context,
            additional_headers={"Authorization": f"token {token}"}, max_size=None,
        ) as far,
    ):  # fmt: skip
        for ws in (via, own, far):  # the kernel is ready and each path warm
            for _ in range(5):
                await round_trip(ws)
        for _ in range(n):
            timed["proxy"].append(await round_trip(via))
            timed["direct"].append(await round_trip(own))
            timed["relay"].append(await round_trip(far))
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--trips", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aif-bench-sessions-") as tmp:
        data = Path(tmp)
        facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=2)
        facility.start()
        try:
            result = run(facility, args)
        finally:
            facility.stop()
            facility.kill_leftover_jobs()
    result |= {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, python {platform.python_version()}",
        "command": "python benchmarks/session_proxy.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def run(facility: FacilityProcess, args: argparse.Namespace) -> dict[str, Any]:
    assert facility.token is not None
    with Client(facility.url, facility.token) as api:
        starts = []
        for _ in range(args.starts):
            seconds, sid, browser = start_and_open(facility, api)
            starts.append(seconds)
            if len(starts) < args.starts:
                api.stop_session(sid)
                browser.close()
                while api.session(sid)["ended_at"] is None:
                    time.sleep(0.1)
        own, token, fd = direct(facility, sid)
        keys = Path(tempfile.mkdtemp(prefix="aif-bench-relay-")) / "attempt"
        far, context, port, relaying = relayed(facility, sid, token, keys)
        try:
            saved = saves(browser, own, far, sid, args.saves)
            tripped = asyncio.run(
                trips(facility, browser, sid, token, fd, (port, context), args.trips)
            )
        finally:
            own.close()
            far.close()
            browser.close()
            os.close(fd)
            os.killpg(relaying.pid, 15)
            relaying.wait()
    return {
        "start_s": {"each": starts, "median": statistics.median(starts)},
        "save_1mb_ms": {k: stats(v) for k, v in saved.items()},
        "kernel_round_trip_ms": {k: stats(v) for k, v in tripped.items()},
    }


def print_table(result: dict[str, Any]) -> None:
    starts = ", ".join(f"{s:.1f}" for s in result["start_s"]["each"])
    print(f"start → JupyterLab through the proxy: median {result['start_s']['median']:.1f} s")
    print(f"  (each: {starts} s)")
    print(
        f"{'':28} {'direct p50':>11} {'p99':>8} {'proxy p50':>10} {'p99':>8} {'added':>8} "
        f"{'relay p50':>10} {'p99':>8} {'added':>8}"
    )
    for name, key in (
        ("1 MB notebook save (ms)", "save_1mb_ms"),
        ("kernel round trip (ms)", "kernel_round_trip_ms"),
    ):
        row = result[key]
        base = row["direct"]["p50"]
        print(
            f"{name:28} {base:11.2f} {row['direct']['p99']:8.2f} "
            f"{row['proxy']['p50']:10.2f} {row['proxy']['p99']:8.2f} "
            f"{row['proxy']['p50'] - base:+8.2f} {row['relay']['p50']:10.2f} "
            f"{row['relay']['p99']:8.2f} {row['relay']['p50'] - base:+8.2f}"
        )
    print(f"machine: {result['machine']}")


if __name__ == "__main__":
    main()
