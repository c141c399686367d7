"""The SDK's software calls: Python environments and images. `Client` mixes them in."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class SoftwareCalls(Plumbing):
    # ---- environments ----------------------------------------------------------------
    def create_environment(
        self,
        name: str,
        requirements: str,
        *,
        project: str | None = None,
        python: str | None = None,
    ) -> Json:
        """Build environment `name` from a requirements file's text, in the background;
        `project` None: the facility's (admins)."""
        body = {"name": name, "project": project, "requirements": requirements}
        if python is not None:
            body["python"] = python
        result: Json = self._call("POST", "/environments", json=body)
        return result

    def environments(self, *, project: str | None = None) -> list[Json]:
        result: list[Json] = self._call("GET", "/environments", params={"project": project})
        return result

    def environment(self, name: str, *, project: str | None = None) -> Json:
        result: Json = self._call("GET", _env(name), params={"project": project})
        return result

    def environment_log(self, name: str, *, project: str | None = None, lines: int = 40) -> Json:
        params = {"project": project, "lines": lines}
        result: Json = self._call("GET", _env(name) + "/log", params=params)
        return result

    def environment_jobs(self, name: str, *, project: str | None = None) -> list[Json]:
        result: list[Json] = self._call("GET", _env(name) + "/jobs", params={"project": project})
        return result

    def delete_environment(self, name: str, *, project: str | None = None) -> None:
        self._call("DELETE", _env(name), params={"project": project})

    # ---- images ----------------------------------------------------------------------
    def import_image(
        self, file: str | Path, *, name: str | None = None, project: str | None = None
    ) -> list[Json]:
        """Import the image in `file` (docker save / OCI archive), admins only."""
        with open(file, "rb") as handle:
            params = {"name": name, "project": project}
            result: list[Json] = self._upload("/images", handle, params=params)
        return result

    def images(self, *, project: str | None = None) -> list[Json]:
        result: list[Json] = self._call("GET", "/images", params={"project": project})
        return result

    def image(self, ref: str, *, project: str | None = None) -> Json:
        result: Json = self._call("GET", _image(ref), params={"project": project})
        return result

    def remove_image(self, ref: str, *, project: str | None = None) -> None:
        self._call("DELETE", _image(ref), params={"project": project})


def _env(name: str) -> str:
    return "/environments/" + quote(name, safe="")


def _image(ref: str) -> str:
    return "/images/" + quote(ref, safe="/:")
