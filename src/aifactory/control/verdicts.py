"""Keeping the last round's verdicts (store.verdicts), at a pace their cost allows.

With up to `EVERY_ROUND` jobs waiting the verdicts are kept every round. With tens of
thousands of jobs waiting, judging all of them and writing what changed costs real time, so a
round keeps them only once `PACE` times that cost has gone by since the last (never more than
`MAX_AGE_S`): the verdicts cost at most about 1/PACE of the loop's time. A job that arrived
since is answered as not judged yet.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy.orm import Session

from aifactory.scheduler.explain import Explanation
from aifactory.store import verdicts as store

PACE = 5.0
MAX_AGE_S = 30.0
EVERY_ROUND = 2000  # waiting jobs whose verdicts are cheap enough to keep every round


class VerdictKeeper:
    def __init__(self) -> None:
        self._kept: dict[int, store.Kept] | None = None  # as stored; None: unknown
        self._kept_at = -1.0
        self._cost_s = 0.0
        self._started = 0.0

    def forget(self) -> None:
        """A new lease term: another loop may have written since; write everything again."""
        self._kept = None

    def due(self, now: float, waiting: int) -> bool:
        """Whether this round judges every waiting job (`waiting` of them) and keeps them."""
        if self._kept is None:
            due = True
        elif not waiting:
            due = bool(self._kept)  # clear what is left; else nothing to say
        else:
            gap = min(MAX_AGE_S, PACE * self._cost_s)
            due = waiting <= EVERY_ROUND or now - self._kept_at >= gap
        if due:
            self._started = time.perf_counter()  # the cost counts the judging, then the writing
        return due

    def keep(self, session: Session, verdicts: Mapping[int, Explanation], now: float) -> None:
        found = {job_id: _kept(e) for job_id, e in verdicts.items()}
        store.keep(session, found, now=now, previous=self._kept)
        self._kept, self._kept_at = found, now
        self._cost_s = time.perf_counter() - self._started


def _kept(found: Explanation) -> store.Kept:
    return store.Kept(found.held, found.position, found.reason, found.estimated_start)
