"""A short-lived, in-process cache of who a token belongs to.

Authenticating costs a read transaction per request; on the submit path that is as much as the
work itself. Entries live `ttl_s` seconds (default 2 s) and never past the token's expiry. Any
write through this process's API that can change a principal (tokens, members, users) clears
the cache at once; another process sees such a change within `ttl_s`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from aifactory.services.principal import Principal


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    fresh_until: float


class PrincipalCache:
    def __init__(self, ttl_s: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str, now: float) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry.fresh_until <= now:
            return None
        return entry.principal

    def put(
        self, token_hash: str, principal: Principal, token_expires_at: float | None, now: float
    ) -> None:
        if self.ttl_s <= 0:
            return
        until = now + self.ttl_s
        if token_expires_at is not None:
            until = min(until, token_expires_at)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[token_hash] = _Entry(principal, until)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
