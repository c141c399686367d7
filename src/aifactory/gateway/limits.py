"""Inference keys' requests and tokens per minute, over a sliding minute, in this process.

A key over its `rpm` is refused before any engine is asked, with the seconds until its oldest
request of the minute leaves the window (Retry-After). Tokens are known only once a request
has been answered, so `tpm` stops a key once its minute's tokens reach it (as the OpenAI API
does, the request that crosses it is served). With several API workers (`--workers N`) each
counts its own requests: a key may reach N times its limits; one worker is exact.
"""

from __future__ import annotations

from collections import deque

from aifactory.services.gateway import Refusal, Route

WINDOW_S = 60.0
KEYS_KEPT = 10_000


class KeyLimits:
    def __init__(self) -> None:
        self._requests: dict[int, deque[float]] = {}
        self._tokens: dict[int, deque[tuple[float, int]]] = {}

    def admit(self, route: Route, now: float) -> None:
        """Count the request, or refuse it (429) if the key is at a limit."""
        if route.rpm is None and route.tpm is None:
            return
        requests = self._requests.setdefault(route.key_id, deque())
        tokens = self._tokens.setdefault(route.key_id, deque())
        _drop_before(requests, now - WINDOW_S)
        while tokens and tokens[0][0] <= now - WINDOW_S:
            tokens.popleft()
        if route.rpm is not None and len(requests) >= route.rpm:
            raise _limited(f"{route.rpm} requests per minute", requests[0] + WINDOW_S - now)
        if route.tpm is not None and sum(n for _, n in tokens) >= route.tpm:
            raise _limited(f"{route.tpm} tokens per minute", tokens[0][0] + WINDOW_S - now)
        requests.append(now)
        if len(self._requests) > KEYS_KEPT:
            self._forget_idle(now)

    def used(self, route: Route, usage: dict[str, int], now: float) -> None:
        if route.tpm is None:
            return
        spent = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        if spent:
            self._tokens.setdefault(route.key_id, deque()).append((now, spent))

    def _forget_idle(self, now: float) -> None:
        for key_id in [k for k, q in self._requests.items() if not q or q[-1] <= now - WINDOW_S]:
            self._requests.pop(key_id, None)
            self._tokens.pop(key_id, None)


def _drop_before(times: deque[float], since: float) -> None:
    while times and times[0] <= since:
        times.popleft()


def _limited(limit: str, wait_s: float) -> Refusal:
    return Refusal(
        429,
        f"this key's rate limit of {limit} is reached",
        "rate_limit_error",
        "rate_limit_exceeded",
        retry_after=max(wait_s, 1.0),
    )


_limits = KeyLimits()


def limits() -> KeyLimits:
    """This process's (the gateway's handlers run on one event loop: no lock is needed)."""
    return _limits
