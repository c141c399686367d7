"""The SDK's GDPR calls (erasures, processing records, project export and closure). `Client`
mixes them in; they use its plumbing (`_call`, `_download`).

Erasures and closures are carried out by the facility's control loop: a request returns at
once (state `recorded` or `closing`); follow it with `erasure(id)` or `closure(project)`.
"""

from __future__ import annotations

from typing import Any

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class GdprCalls(Plumbing):
    # ---- erasures (GDPR Art. 17) ------------------------------------------------------
    def request_erasure(
        self, dataset: str, version: int, *, reason: str, stop_running_jobs: bool = False
    ) -> Json:
        """Record an erasure of a dataset version; refused (409) while active jobs use it,
        unless `stop_running_jobs` (they are cancelled, and the erasure runs after them)."""
        body = {"reason": reason, "stop_running_jobs": stop_running_jobs}
        result: Json = self._call(
            "POST", f"/datasets/{dataset}/versions/{version}/erasure", json=body
        )
        return result

    def erasures(
        self, *, state: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Json]:
        """The erasures you may see, newest first (page on with `before_id`)."""
        params = {"state": state, "limit": limit, "before_id": before_id}
        result: list[Json] = self._call("GET", "/erasures", params=params)
        return result

    def erasure(self, erasure_id: int) -> Json:
        """One erasure, with its report once done."""
        result: Json = self._call("GET", f"/erasures/{erasure_id}")
        return result

    def erasure_certificate(self, erasure_id: int) -> bytes:
        """The certificate of a done erasure, as PDF bytes."""
        return self._download(f"/erasures/{erasure_id}/certificate.pdf")

    # ---- records of processing (Art. 30) -----------------------------------------------
    def processing_records(self, *, controller: str | None = None) -> Json:
        """{controller, generated_at, security_measures, records: [...]}: one per dataset."""
        result: Json = self._call(
            "GET", "/processing-records", params={"controller": controller, "format": "json"}
        )
        return result

    def processing_records_csv(self, *, controller: str | None = None) -> bytes:
        return self._download(
            "/processing-records", params={"controller": controller, "format": "csv"}
        )

    # ---- projects: export and closure --------------------------------------------------
    def export_project(self, project: str) -> bytes:
        """All of the project's data, as the bytes of a ZIP."""
        return self._download(f"/projects/{project}/export")

    def close_project(self, project: str, *, reason: str, stop_running_jobs: bool = False) -> Json:
        """Close a project for good (admins); refused (409) while its jobs are active, unless
        `stop_running_jobs`."""
        body = {"reason": reason, "stop_running_jobs": stop_running_jobs}
        result: Json = self._call("POST", f"/projects/{project}/close", json=body)
        return result

    def closure(self, project: str) -> Json:
        result: Json = self._call("GET", f"/projects/{project}/closure")
        return result

    def closure_certificate(self, project: str) -> bytes:
        return self._download(f"/projects/{project}/closure/certificate.pdf")
