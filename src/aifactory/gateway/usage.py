"""Recording what gateway requests used, a batch at a time: a request hands its usage over and
answers at once; a thread of the facility's writes what has come in, in one transaction, every
FLUSH_S. A crash of the control plane can lose the usage of the last FLUSH_S of requests (never
count one twice); a batch the database refuses is tried again with the next (at most
PENDING_KEPT wait; what falls off is logged). Budgeted keys do not come here: theirs is written
before they answer (gateway.routes)."""

from __future__ import annotations

import atexit
import logging
import threading

from aifactory.faces.state import AppState
from aifactory.services import gateway
from aifactory.services.gateway import Used

log = logging.getLogger("aifactory.gateway")
FLUSH_S = 0.05
PENDING_KEPT = 100_000  # requests' usage kept while the database does not take it


class UsageRecorder:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self._pending: list[Used] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="gateway-usage", daemon=True).start()

    def add(self, used: Used) -> None:
        with self._lock:
            self._pending.append(used)
        self._wake.set()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            with self.state.db.session() as session:
                gateway.record(session, batch)
        except Exception:  # written with the next batch; at most PENDING_KEPT wait
            with self._lock:
                self._pending[:0] = batch
                lost = len(self._pending) - PENDING_KEPT
                if lost > 0:
                    del self._pending[:lost]
                    log.error("lost the usage of %d gateway requests", lost)
            raise

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the next batch tries again with what came since
                log.exception("recording gateway usage")
            threading.Event().wait(FLUSH_S)


_recorders: dict[int, UsageRecorder] = {}
_made = threading.Lock()


def recorder(state: AppState) -> UsageRecorder:
    """The facility's recorder (one per app state), started at its first request."""
    found = _recorders.get(id(state))
    if found is None:
        with _made:
            found = _recorders.get(id(state))
            if found is None:
                found = _recorders[id(state)] = UsageRecorder(state)
    return found


@atexit.register
def _flush_all() -> None:
    for each in list(_recorders.values()):
        try:
            each.flush()
        except Exception:  # at exit: the database may be gone already
            log.exception("recording gateway usage at exit")
