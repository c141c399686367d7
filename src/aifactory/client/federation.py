"""The SDK's federation calls: import a file of upstream awards, list imports, export usage per
award and month (docs/federation.md). `Client` mixes them in."""

from __future__ import annotations

from typing import Any

from aifactory.client.accounting import Moment, iso
from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class FederationCalls(Plumbing):
    def import_awards(self, content: str, *, fmt: str, source: str, dry_run: bool = False) -> Json:
        """Import a file of award records (`fmt`: json or csv) read as text; what each did."""
        body = {"source": source, "format": fmt, "content": content, "dry_run": dry_run}
        result: Json = self._call("POST", "/federation/imports", json=body)
        return result

    def federation_imports(self, *, limit: int | None = None) -> list[Json]:
        """The latest imports, newest first."""
        result: list[Json] = self._call("GET", "/federation/imports", params={"limit": limit})
        return result

    def federation_usage(self, *, start: Moment, end: Moment, project: str | None = None) -> Json:
        """Each imported award's usage booked in [start, end), per month, with totals."""
        params = {"from": iso(start), "to": iso(end), "project": project, "format": "json"}
        result: Json = self._call("GET", "/federation/usage", params=params)
        return result

    def federation_usage_csv(
        self, *, start: Moment, end: Moment, project: str | None = None
    ) -> bytes:
        params = {"from": iso(start), "to": iso(end), "project": project, "format": "csv"}
        return self._download("/federation/usage", params=params)
