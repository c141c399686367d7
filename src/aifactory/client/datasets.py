"""The SDK's dataset calls: the registry, versions and grants. `Client` mixes them in; they use
its plumbing (`_call`).

Moments as at the API: a `datetime`, or ISO 8601 text (without an offset: UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]
Moment = datetime | str


def _iso(moment: Moment) -> str:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _path(name: str) -> str:
    return "/datasets/" + quote(name, safe="")


class DatasetCalls(Plumbing):
    # ---- the registry ----------------------------------------------------------------
    def datasets(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/datasets")
        return result

    def dataset(self, name: str) -> Json:
        result: Json = self._call("GET", _path(name))
        return result

    def register_dataset(
        self,
        name: str,
        *,
        path: str,
        classification: str,
        residency: str,
        retention_until: Moment,
        licence: str,
        controller: str,
        processor: str,
        purposes: Sequence[str] = (),
        legal_basis: str | None = None,
        special_condition: str | None = None,
        dpia_ref: str | None = None,
        project: str | None = None,
        description: str = "",
    ) -> Json:
        """Register dataset `name` with its first version; `project` None: a facility
        dataset (admins)."""
        body = {
            "name": name,
            "project": project,
            "description": description,
            "controller": controller,
            "processor": processor,
            "path": path,
            "classification": classification,
            "legal_basis": legal_basis,
            "special_condition": special_condition,
            "dpia_ref": dpia_ref,
            "purposes": list(purposes),
            "residency": residency,
            "retention_until": _iso(retention_until),
            "licence": licence,
        }
        result: Json = self._call("POST", "/datasets", json=body)
        return result

    def add_dataset_version(self, name: str, *, path: str, **changes: Any) -> Json:
        """A new version at `path`; `changes` takes the terms that differ from the newest
        version's (classification, legal_basis, purposes, residency, retention_until...)."""
        body = {"path": path, **changes}
        if isinstance(body.get("retention_until"), datetime):
            body["retention_until"] = _iso(body["retention_until"])
        if "purposes" in body:
            body["purposes"] = list(body["purposes"])
        result: Json = self._call("POST", _path(name) + "/versions", json=body)
        return result

    # ---- grants ----------------------------------------------------------------------
    def dataset_grants(self, name: str) -> list[Json]:
        result: list[Json] = self._call("GET", _path(name) + "/grants")
        return result

    def grant_dataset(self, name: str, *, project: str, purpose: str, until: Moment) -> Json:
        body = {"project": project, "purpose": purpose, "until": _iso(until)}
        result: Json = self._call("POST", _path(name) + "/grants", json=body)
        return result

    def revoke_dataset_grant(self, name: str, grant_id: int, *, reason: str) -> Json:
        path = f"{_path(name)}/grants/{grant_id}/revoke"
        result: Json = self._call("POST", path, json={"reason": reason})
        return result
