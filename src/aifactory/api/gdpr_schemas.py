"""Request and response schemas of the GDPR routes: erasures, project closure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from aifactory.api.schemas import Request
from aifactory.api.units import moment_at
from aifactory.services.closure import ClosureView
from aifactory.services.erasure import ErasureView

_STOP = (
    "cancel the active jobs that are in the way; without it the request is refused (409, "
    "naming them) while any is active"
)


class ErasureRequest(Request):
    reason: str = Field(min_length=1, max_length=20_000, description="why, for the report")
    stop_running_jobs: bool = Field(False, description=_STOP)


class ErasureOut(BaseModel):
    id: int
    dataset: str
    version: int
    owner_project: str | None = Field(description="none: a facility dataset")
    trigger: str = Field(description="request (Art. 17), retention or closure")
    reason: str
    state: str = Field(description="recorded → erasing → done")
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    certificate: bool = Field(description="the certificate PDF can be fetched (state done)")
    active_jobs: list[int] = Field(
        description="while recorded: the active jobs it waits for (asked to stop)"
    )
    report: dict[str, Any] | None = Field(
        None, description="once done (only on GET /erasures/{id}): what was erased, who used it"
    )

    @classmethod
    def of(cls, view: ErasureView, *, with_report: bool = False) -> ErasureOut:
        erasure = view.erasure
        return cls(
            id=erasure.id,
            dataset=view.dataset,
            version=view.version,
            owner_project=view.owner_project,
            trigger=erasure.trigger,
            reason=erasure.reason,
            state=erasure.state,
            requested_by=erasure.requested_by,
            requested_at=moment_at(erasure.requested_at),
            completed_at=None if erasure.completed_at is None else moment_at(erasure.completed_at),
            certificate=erasure.certificate_pdf is not None,
            active_jobs=list(view.active_jobs),
            report=erasure.report if with_report else None,
        )


class ClosureRequest(Request):
    reason: str = Field(min_length=1, max_length=20_000, description="why, for the report")
    stop_running_jobs: bool = Field(False, description=_STOP)


class ClosureOut(BaseModel):
    project: str
    state: str = Field(description="closing → closed")
    reason: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    certificate: bool = Field(description="the certificate PDF can be fetched (state closed)")
    report: dict[str, Any] | None = Field(
        description="once closed: jobs, grants revoked, datasets erased, members"
    )

    @classmethod
    def of(cls, view: ClosureView) -> ClosureOut:
        closure = view.closure
        closed = closure.certificate_pdf is not None
        return cls(
            project=view.project,
            state=closure.state,
            reason=view.reason,
            requested_by=closure.requested_by,
            requested_at=moment_at(closure.requested_at),
            completed_at=None if closure.completed_at is None else moment_at(closure.completed_at),
            certificate=closed,
            report=closure.report if closed else None,
        )
