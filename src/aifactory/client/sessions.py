"""The SDK's interactive-session calls: JupyterLab (or a shell in it) as a job of the project,
opened in a browser by a one-use link. `Client` mixes them in.

A session's id is its job's. It is `ready` once its notebook server answers the facility; a
session that has ended has an `ended_at`. Arguments left as None take the facility's defaults.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class SessionCalls(Plumbing):
    def start_session(
        self,
        *,
        project: str | None = None,
        kind: str | None = None,
        gpus: int | None = None,
        cpus: int | None = None,
        memory_mb: int | None = None,
        gpu_model: str | None = None,
        time_limit_s: int | None = None,
        idle_timeout_s: float | None = None,
        datasets: Sequence[str] = (),
        environment: str | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        """Queue a session (kind `jupyter` or `shell`); the session back, usually PENDING."""
        body = {
            "project": project,
            "kind": kind,
            "gpus": gpus,
            "cpus": cpus,
            "memory_mb": memory_mb,
            "gpu_model": gpu_model,
            "time_limit_s": time_limit_s,
            "idle_timeout_s": idle_timeout_s,
            "datasets": list(datasets) or None,
            "environment": environment,
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: Json = self._call(
            "POST",
            "/sessions",
            json={k: v for k, v in body.items() if v is not None},
            headers=headers,
        )
        return result

    def sessions(self, project: str | None = None) -> list[Json]:
        """The sessions of the projects whose jobs they may see, newest first."""
        result: list[Json] = self._call("GET", "/sessions", params={"project": project})
        return result

    def session(self, session_id: int) -> Json:
        result: Json = self._call("GET", f"/sessions/{session_id}")
        return result

    def stop_session(self, session_id: int) -> Json:
        """Stop it as a job is cancelled (SIGTERM, then its grace); the session back."""
        result: Json = self._call("DELETE", f"/sessions/{session_id}")
        return result

    def open_session(self, session_id: int) -> str:
        """A link that opens the running session in a browser: one use, valid for a minute."""
        result: Json = self._call("POST", f"/sessions/{session_id}/open")
        return str(result["url"])

    def wait_session_ready(
        self, session_id: int, *, timeout_s: float | None = 3600, poll_s: float = 1.0
    ) -> Json:
        """Poll until the session is ready or has ended, and return it (check `ready`);
        TimeoutError after `timeout_s` (None: wait as long as it takes)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            found = self.session(session_id)
            if found["ready"] or found["ended_at"] is not None:
                return found
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"session {session_id} still {found['state']} and not ready after {timeout_s} s"
                )
            time.sleep(poll_s)
