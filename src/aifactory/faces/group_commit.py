"""Group commit for submissions: one writer thread, one transaction per batch.

Every submission that arrives while the previous batch is being written waits in the queue;
the writer then checks and inserts all of them in one transaction and answers each caller after
the commit, so a 201 still means "stored". Under load this turns N small transactions (each
with its BEGIN, lock wait and COMMIT) into one; at rest a batch is one submission and nothing
waits for a timer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aifactory.services.jobs import Outcome, Submission, Submitted, submit_jobs
from aifactory.services.session import Database

log = logging.getLogger("aifactory.api")


@dataclass
class _Waiting:
    submission: Submission
    future: asyncio.Future[Outcome]
    loop: asyncio.AbstractEventLoop


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        on_commit: Callable[[], None],
        *,
        max_batch: int = 256,
    ) -> None:
        self.db = db
        self.clock = clock
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queue: deque[_Waiting] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def submit(self, submission: Submission) -> Outcome:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(submission, loop.create_future(), loop)
        with self._ready:
            self._queue.append(waiting)
            self._ready.notify()
        return await waiting.future

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if self._stopping and not self._queue:
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))
                ]
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            with self.db.session() as session:
                outcomes = submit_jobs(session, [w.submission for w in batch], now=self.clock())
        except Exception as exc:  # the transaction failed: nobody's job was stored
            log.exception("a batch of %d submissions failed", len(batch))
            for waiting in batch:
                waiting.loop.call_soon_threadsafe(_fail, waiting.future, exc)
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            waiting.loop.call_soon_threadsafe(_settle, waiting.future, outcome)
        if any(isinstance(o, Submitted) and o.created for o in outcomes):
            self.on_commit()


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():  # the caller may have gone; the job is stored all the same
        future.set_result(outcome)


def _fail(future: asyncio.Future[Outcome], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
