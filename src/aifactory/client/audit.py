"""The SDK's audit-log calls. `Client` mixes them in; they use its plumbing (`_call`, `_lines`).

Filters as at the API: `actor`, `object` (e.g. "job:12"), `action` (e.g. "job.submit"), `since`
(inclusive) and `until` (exclusive) as ISO 8601 (a `datetime`, or text; without an offset the
API reads them as UTC). Events come back oldest first, as dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]
Moment = datetime | str


def _filters(
    actor: str | None,
    object: str | None,
    action: str | None,
    since: Moment | None,
    until: Moment | None,
) -> dict[str, Any]:
    def iso(moment: Moment | None) -> str | None:
        return moment.isoformat() if isinstance(moment, datetime) else moment

    return {
        "actor": actor,
        "object": object,
        "action": action,
        "since": iso(since),
        "until": iso(until),
    }


class AuditCalls(Plumbing):
    # ---- the audit log ---------------------------------------------------------------
    def audit(
        self,
        *,
        actor: str | None = None,
        object: str | None = None,
        action: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[Json]:
        """One page of the events you may read; the next starts after the last `seq`."""
        params = {
            **_filters(actor, object, action, since, until),
            "limit": limit,
            "after_seq": after_seq,
        }
        result: list[Json] = self._call("GET", "/audit", params=params)
        return result

    def audit_export(
        self,
        *,
        actor: str | None = None,
        object: str | None = None,
        action: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> Iterator[str]:
        """Every matching event you may read, as JSON Lines (one line each, with its newline),
        streamed from the facility."""
        return self._lines("/audit/export", params=_filters(actor, object, action, since, until))

    def audit_verify(self) -> Json:
        """Walk the whole chain (admins and auditors): {ok, checked, first_bad_seq, reason}."""
        result: Json = self._call("GET", "/audit/verify")
        return result
