"""Failed sign-ins slow a guesser down: past the limit an address waits out the window."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from aifactory.web.pages import login
from aifactory.web.throttle import Throttle
from tests.conftest import LiveServer


def test_an_address_past_the_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    throttle = Throttle(limit=3, window_s=100.0)
    for at in (0.0, 10.0, 20.0):
        assert throttle.wait_s("10.0.0.1", at) == 0.0
        throttle.failed("10.0.0.1", at)
    assert throttle.wait_s("10.0.0.1", 30.0) == 70.0
    assert throttle.wait_s("10.0.0.2", 30.0) == 0.0  # another address is not slowed
    assert throttle.wait_s("10.0.0.1", 100.0) == 0.0  # the first failure has left the window


@pytest.fixture
def strict() -> Iterator[None]:
    kept = login.GUESSES
    login.GUESSES = Throttle(limit=2, window_s=600.0)
    yield
    login.GUESSES = kept


def test_the_sign_in_form_answers_429_after_too_many_failures(
    live_server: LiveServer, strict: None
) -> None:
    with httpx.Client(base_url=live_server.url) as browser:

        def attempt(password: str) -> httpx.Response:
            browser.get("/login")
            form = {
                "username": "admin",
                "password": password,
                "login_csrf": browser.cookies.get("aifactory_login", path="/login") or "",
            }
            return browser.post("/login/password", data=form)

        assert attempt("wrong guess number 1").status_code == 401
        assert attempt("wrong guess number 2").status_code == 401
        refused = attempt("wrong guess number 3")
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
