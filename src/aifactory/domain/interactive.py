"""Interactive sessions: JupyterLab (or a shell in it) as a job, and when one is idle: pure.

A session is a job of its project that runs a notebook server on a Unix socket in its own
directory; the facility alone reaches it, through its proxy (gateway.session_proxy). It is
idle when its server reports no kernel busy, no kernel connection and no activity (kernels,
terminals, API calls: what JupyterLab does while a tab is open) for its idle timeout; then it
is stopped as any job is (SIGTERM, grace) and its GPUs are free. Its time limit still holds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SOCKET = ".aifactory-notebook.sock"  # in the job's own directory (hidden in the file browser)
BASE_PATH = "/sessions/{id}/"  # the notebook server's base URL, on the session's own origin
TOKEN_ENV = "JUPYTER_TOKEN"  # noqa: S105 - the variable's name (job views hide its value)
ENTER = "_aifactory/enter"  # below the base path: where a ticket is traded for a cookie
MIN_IDLE_S, MAX_IDLE_S = 60.0, 7 * 86400.0
DEFAULT_IDLE_S = 1800.0


class Kind(enum.StrEnum):
    JUPYTER = "jupyter"  # JupyterLab
    SHELL = "shell"  # the same server, opened on a terminal

    @property
    def landing(self) -> str:
        """Where opening the session lands, below its base path."""
        return "lab" if self is Kind.JUPYTER else "terminals/1"


@dataclass(frozen=True, slots=True)
class SessionSpec:
    project: str | None
    kind: Kind = Kind.JUPYTER
    gpus: int = 0
    cpus: int = 1
    memory_mb: int = 4096
    time_limit_s: int = 8 * 3600
    idle_timeout_s: float = DEFAULT_IDLE_S
    datasets: tuple[str, ...] = ()
    environment: str | None = None
    gpu_model: str | None = None


def base_path(job_id: int) -> str:
    return BASE_PATH.format(id=job_id)


def origin(job_id: int, *, domain: str, scheme: str, port: int | None) -> str:
    """The session's own web origin: `s<ID>.<domain>` on the port the facility answers on."""
    default = {"http": 80, "https": 443}.get(scheme)
    shown = "" if port is None or port == default else f":{port}"
    return f"{scheme}://s{job_id}.{domain}{shown}"


def enter_url(job_id: int, ticket: str, *, domain: str, scheme: str, port: int | None) -> str:
    """The one-use link into a session: its origin, where the ticket is traded."""
    where = origin(job_id, domain=domain, scheme=scheme, port=port)
    return f"{where}{base_path(job_id)}{ENTER}?ticket={ticket}"


def job_of_host(host: str, domain: str) -> int | None:
    """The session a request's Host names (`s42.<domain>[:port]`), or None: not a session's."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    suffix = "." + domain.lower()
    if not name.startswith("s") or not name.endswith(suffix):
        return None
    number = name[1 : -len(suffix)]
    if not number.isascii() or not number.isdigit() or len(number) > 12 or number[0] == "0":
        return None
    return int(number)


@dataclass(frozen=True, slots=True)
class Activity:
    """What the session's server said when asked last (None: it has not answered yet)."""

    last_activity_at: float | None
    connections: int = 0  # open kernel connections (a JupyterLab tab with a notebook)
    busy_kernels: int = 0


@dataclass(frozen=True, slots=True)
class Idleness:
    idle_since: float  # when it last did anything (its start if it never said)
    busy: bool  # a kernel runs or a client is connected: never idle

    def idle_for(self, now: float) -> float:
        return 0.0 if self.busy else max(0.0, now - self.idle_since)


def idleness(activity: Activity | None, *, started_at: float) -> Idleness:
    said = activity.last_activity_at if activity is not None else None
    since = max(started_at, said) if said is not None else started_at
    busy = activity is not None and (activity.connections > 0 or activity.busy_kernels > 0)
    return Idleness(since, busy)


def cull_reason(idle: Idleness, *, idle_timeout_s: float, now: float) -> str | None:
    """Why the session is stopped now, or None while it is in use or not idle long enough."""
    if idle.busy or idle.idle_for(now) < idle_timeout_s:
        return None
    return (
        f"idle for {_duration(idle.idle_for(now))} (no kernel activity and no connection; "
        f"its idle timeout is {_duration(idle_timeout_s)}): stopped to free its resources"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"
