"""Whose address a request comes from, on a real facility (`aifactory up`): the connecting one,
unless it is a proxy named with `--trusted-proxy`. A guesser who sends `X-Forwarded-For` from
anywhere else neither hides in the audit log nor dodges the sign-in throttle by changing it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aifactory.web.pages.login import GUESSES
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow
GUESSER = "203.0.113.9"  # documentation addresses (RFC 5737)
ELSEWHERE = "198.51.100.7"


@pytest.fixture
def facility(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str
) -> Iterator[FacilityProcess]:
    """A facility trusting the proxies `request.param` names."""
    process = FacilityProcess(tmp_path / "data", sqlite_url, cpus=2)
    process.data_dir.mkdir()
    for proxy in request.param:
        process.args += ["--trusted-proxy", proxy]
    process.start()
    yield process
    process.stop()


def sign_in(browser: httpx.Client, forwarded_for: str | None) -> httpx.Response:
    """A wrong password for admin, sent through the sign-in form."""
    browser.get("/login")
    form = {
        "username": "admin",
        "password": "not the password",
        "login_csrf": browser.cookies.get("aifactory_login", path="/login") or "",
    }
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return browser.post("/login/password", data=form, headers=headers)


@pytest.mark.parametrize(
    ("facility", "seen_as", "after"),
    [
        # No trusted proxy: the header is the guesser's word, and counts for nothing.
        pytest.param((), "127.0.0.1", {GUESSER: 429, None: 429, ELSEWHERE: 429}, id="direct"),
        # 127.0.0.1 is the proxy: the address it forwards is the client's.
        pytest.param(
            ("127.0.0.1",), GUESSER, {GUESSER: 429, None: 401, ELSEWHERE: 401}, id="proxied"
        ),
    ],
    indirect=["facility"],
)
def test_failed_sign_ins_count_against_the_address_the_facility_trusts(
    facility: FacilityProcess, seen_as: str, after: dict[str | None, int]
) -> None:
    with httpx.Client(base_url=facility.url, timeout=30) as browser:
        for _ in range(GUESSES.limit):
            assert sign_in(browser, GUESSER).status_code == 401
        for forwarded_for, status in after.items():
            assert sign_in(browser, forwarded_for).status_code == status, forwarded_for
    with facility.client() as admin:
        failed = admin.audit(action="auth.failed", limit=1000)
    # A throttled attempt is refused before any check, so it leaves no event; the others are
    # recorded from where they came (the proxy itself, when it forwards nothing).
    checked = [f or "127.0.0.1" for f, status in after.items() if status == 401]
    assert [e["source"] for e in failed] == [seen_as] * GUESSES.limit + checked
    assert {e["object"] for e in failed} == {"portal:password"}
