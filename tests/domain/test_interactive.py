"""When a session is idle, and each session's own origin (domain.interactive)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.interactive import (
    Activity,
    Kind,
    base_path,
    cull_reason,
    enter_url,
    idleness,
    job_of_host,
    origin,
)

moments = st.floats(min_value=0, max_value=1e9, allow_nan=False)


def test_a_session_never_heard_from_is_idle_since_its_start() -> None:
    idle = idleness(None, started_at=100.0)
    assert idle.idle_for(160.0) == 60.0
    assert cull_reason(idle, idle_timeout_s=60.0, now=160.0) is not None
    assert cull_reason(idle, idle_timeout_s=60.0, now=159.0) is None


def test_the_reason_says_how_long_and_why() -> None:
    idle = idleness(Activity(1000.0), started_at=0.0)
    reason = cull_reason(idle, idle_timeout_s=1800.0, now=1000.0 + 1800.0)
    assert reason is not None
    assert "idle for 30 min" in reason
    assert "no kernel activity and no connection" in reason


@given(
    started=moments,
    said=st.one_of(st.none(), moments),
    connections=st.integers(0, 5),
    busy=st.integers(0, 5),
    timeout=st.floats(min_value=60, max_value=7 * 86400),
    later=st.floats(min_value=0, max_value=1e7),
)
def test_culled_only_when_unused_for_the_whole_timeout(
    started: float,
    said: float | None,
    connections: int,
    busy: int,
    timeout: float,
    later: float,
) -> None:
    activity = Activity(said, connections, busy)
    idle = idleness(activity, started_at=started)
    now = max(started, said or 0.0) + later
    reason = cull_reason(idle, idle_timeout_s=timeout, now=now)
    in_use = connections > 0 or busy > 0
    last = max(started, said) if said is not None else started
    assert (reason is not None) == (not in_use and now - last >= timeout)


def test_origins_are_one_per_session_and_read_back() -> None:
    assert origin(42, domain="localhost", scheme="http", port=8000) == "http://s42.localhost:8000"
    assert origin(7, domain="ai.example.nl", scheme="https", port=443) == "https://s7.ai.example.nl"
    url = enter_url(42, "T", domain="localhost", scheme="http", port=8000)
    assert url == "http://s42.localhost:8000/sessions/42/_aifactory/enter?ticket=T"
    assert job_of_host("s42.localhost:8000", "localhost") == 42
    assert job_of_host("S42.LOCALHOST", "localhost") == 42
    assert job_of_host("s7.ai.example.nl", "ai.example.nl") == 7


def test_hosts_that_are_not_a_sessions_are_left_alone() -> None:
    for host in (
        "localhost:8000",
        "127.0.0.1:8000",
        "s42.evil.example",
        "s042.localhost",  # one spelling per session
        "sx.localhost",
        "s.localhost",
        "s1.s2.localhost",
        "s99999999999999.localhost",
        "s１.localhost",  # a non-ASCII digit
        "xs42.localhost",
        "",
    ):
        assert job_of_host(host, "localhost") is None, host


def test_a_shell_session_lands_on_a_terminal() -> None:
    assert base_path(3) == "/sessions/3/"
    assert Kind.JUPYTER.landing == "lab"
    assert Kind.SHELL.landing.startswith("lab") or Kind.SHELL.landing.startswith("terminals")
