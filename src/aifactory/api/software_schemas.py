"""Environments and images as the API takes and gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from aifactory.api.schemas import Name, Request
from aifactory.api.units import moment_at
from aifactory.services.environments import EnvironmentView, JobUse
from aifactory.services.images import ImageView


class EnvironmentCreate(Request):
    name: Name
    project: Name | None = Field(
        None, description="the project it belongs to; none: the facility's (admins)"
    )
    requirements: str = Field(
        min_length=1,
        max_length=256 * 1024,
        description="a requirements file: one requirement per line (name, version specifier, "
        "extras, markers); no options, URLs or paths: the facility's registry is its operators'",
    )
    python: str | None = Field(
        None,
        pattern=r"^3\.[0-9]{1,2}$",
        description="major.minor, e.g. 3.11 (default: the facility's)",
    )


class PackageOut(BaseModel):
    name: str
    version: str
    license: str | None = None
    summary: str | None = None


class EnvironmentOut(BaseModel):
    name: str
    project: str | None = Field(description="null: the facility's")
    key: str = Field(description="the build's content key: same requirements, same key")
    state: str = Field(description="queued, building, ready or failed")
    python: str
    python_version: str | None
    requirements: list[str]
    packages: list[PackageOut] = Field(description="every package installed, resolved")
    error: str | None = Field(description="pip's error, when the build failed")
    size_bytes: int | None
    build_seconds: float | None
    created_by: str
    created_at: datetime
    jobs: int = Field(description="jobs (of projects you see) that ran or wait in it")

    @classmethod
    def of(cls, view: EnvironmentView) -> EnvironmentOut:
        return cls(
            name=view.name,
            project=view.project,
            key=view.key,
            state=view.state,
            python=view.python,
            python_version=view.python_version,
            requirements=view.requirements,
            packages=[PackageOut.model_validate(_package(p)) for p in view.packages],
            error=view.error,
            size_bytes=view.size_bytes,
            build_seconds=view.build_seconds,
            created_by=view.created_by,
            created_at=moment_at(view.created_at),
            jobs=view.jobs,
        )


def _package(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(found.get("name", "")),
        "version": str(found.get("version", "")),
        "license": found.get("license") or None,
        "summary": found.get("summary") or None,
    }


class BuildLogOut(BaseModel):
    state: str
    lines: list[str] = Field(description="the build's output, its last lines")


class JobUseOut(BaseModel):
    id: int
    name: str
    project: str
    state: str
    submitted_at: datetime

    @classmethod
    def of(cls, use: JobUse) -> JobUseOut:
        return cls(
            id=use.id,
            name=use.name,
            project=use.project,
            state=use.state,
            submitted_at=moment_at(use.submitted_at),
        )


class ImageOut(BaseModel):
    name: str
    project: str | None = Field(description="null: the facility's")
    digest: str = Field(description="sha256 of its manifest: what a job records")
    size_bytes: int
    architecture: str | None
    env: list[str]
    entrypoint: list[str]
    cmd: list[str]
    working_dir: str | None
    imported_by: str
    imported_at: datetime
    jobs: int

    @classmethod
    def of(cls, view: ImageView) -> ImageOut:
        config = view.config
        return cls(
            name=view.name,
            project=view.project,
            digest=view.digest,
            size_bytes=view.size_bytes,
            architecture=config.get("architecture"),
            env=list(config.get("env") or []),
            entrypoint=list(config.get("entrypoint") or []),
            cmd=list(config.get("cmd") or []),
            working_dir=config.get("working_dir") or None,
            imported_by=view.imported_by,
            imported_at=moment_at(view.imported_at),
            jobs=view.jobs,
        )
