"""The gateway's queue (gateway.routes), through the real API with a real engine socket: when
every replica has its endpoint's concurrency in flight a request waits, at most
`gateway_queue_s`, then is answered 503 with Retry-After; a replica started while it waits
takes it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from aifactory.domain.jobfiles import work_dir
from aifactory.domain.jobs import JobState
from aifactory.services.auth import principal_of
from aifactory.services.endpoints import SOCKET
from aifactory.services.inference_keys import create_key
from aifactory.services.tenancy import user_by_name
from aifactory.store.models import Endpoint, Job
from tests.conftest import LiveServer
from tests.control.helpers import submit

ANSWER_S = 1.5  # each answer of the slow engine takes this long


class SlowEngine:
    """A real engine on a Unix socket, in its own thread and loop: answers each completion
    after ANSWER_S, with its usage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_unix_server(self._answer, path=str(self.path))
        )
        self.ready.set()
        self.loop.run_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            size = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(size)
            await asyncio.sleep(ANSWER_S)
            usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            body = json.dumps({"choices": [{"text": "ok"}], "usage": usage}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        current = asyncio.current_task()
        for task in [t for t in asyncio.all_tasks() if t is not current]:
            task.cancel()
        await asyncio.sleep(0)


@pytest.fixture
def served(live_server: LiveServer) -> Iterator[tuple[LiveServer, str, list[SlowEngine]]]:
    """Endpoint `slow` of the default project (concurrency 1) with one running replica, and a
    key; the gateway queues for at most 1 s."""
    db, state = live_server.db, live_server.state
    assert state.jobs_dir is not None
    state.gateway_queue_s = 1.0
    trained = submit(db, time.time(), gpus=0)
    with db.session() as s:
        s.get(Job, trained).state = JobState.SUCCEEDED.value  # type: ignore[union-attr]
        endpoint = Endpoint(
            project_id=1, name="slow", source_job_id=trained, min_replicas=0, max_replicas=2,
            concurrency=1, cpus=1, memory_mb=1024, gpus=0, draining={}, created_by="admin",
            created_at=time.time(),
        )  # fmt: skip
        s.add(endpoint)
        s.flush()
        admin = principal_of(s, user_by_name(s, "admin"))
        _, key = create_key(
            s, admin, name="k", project="default", models=None, ttl_days=None, now=time.time()
        )
        endpoint_id = endpoint.id
    engines = [replica(live_server, endpoint_id)]
    yield live_server, key, engines
    for engine in engines:
        engine.stop()


def replica(live_server: LiveServer, endpoint_id: int) -> SlowEngine:
    """A running replica job of the endpoint, its engine on the socket in its directory."""
    db, jobs_dir = live_server.db, live_server.state.jobs_dir
    assert jobs_dir is not None
    job_id = submit(live_server.db, time.time(), gpus=0, name="replica")
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.state, job.endpoint_id = JobState.RUNNING.value, endpoint_id
    directory = work_dir(jobs_dir / str(job_id))
    directory.mkdir(parents=True)
    return SlowEngine(directory / SOCKET)


def ask(live_server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{live_server.url}/v1/completions",
        json={"model": "slow", "prompt": "Hallo", "max_tokens": 2},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_a_request_waits_for_a_busy_replica_at_most_the_queue_time(
    served: tuple[LiveServer, str, list[SlowEngine]],
) -> None:
    live_server, key, _ = served
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: ask(live_server, key), range(3)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 503, 503]  # one served; the others waited 1 s of its 1.5 s
    for busy in (a for a in answers if a.status_code == 503):
        assert busy.json()["error"]["code"] == "overloaded"
        assert busy.headers["retry-after"] == "1"


def test_a_replica_started_while_a_request_waits_takes_it(
    served: tuple[LiveServer, str, list[SlowEngine]],
) -> None:
    live_server, key, engines = served
    live_server.state.gateway_queue_s = 5.0
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, live_server, key)
        time.sleep(0.3)  # the first holds the only replica
        second = pool.submit(ask, live_server, key)
        time.sleep(0.3)
        with live_server.db.session() as s:
            endpoint_id = s.query(Endpoint.id).filter(Endpoint.name == "slow").scalar()
        engines.append(replica(live_server, endpoint_id))
        began = time.monotonic()
        assert second.result().status_code == 200
        took = time.monotonic() - began
        assert first.result().status_code == 200
    # the new replica answered it: sooner than waiting for the first one's end and its own
    assert took < 2 * ANSWER_S, took
