"""Efficiency reports: a job's asked against used (like Slurm's `seff`), and a project's least
efficient finished jobs (docs/efficiency.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aifactory.api.deps import CurrentUser, ReadSession
from aifactory.api.efficiency_schemas import EfficiencyOut
from aifactory.faces.inputs import JobId
from aifactory.services import efficiency as service

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}/efficiency", response_model=EfficiencyOut)
def job_efficiency(job_id: JobId, session: ReadSession, user: CurrentUser) -> EfficiencyOut:
    """What the job asked for against what it used, per ended attempt and overall, with hints
    where it asked far more than it used. Figures not measured are null."""
    return EfficiencyOut.of(service.job_efficiency(session, user, job_id))


@router.get("/projects/{project}/least-efficient", response_model=list[EfficiencyOut])
def least_efficient(
    project: str,
    session: ReadSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 10,
) -> list[EfficiencyOut]:
    """The project's finished jobs that wasted most: idle GPU-hours, then idle CPU-hours, then
    unused memory; among its latest finished jobs, those with anything measured."""
    found = service.least_efficient(session, user, project=project, limit=limit)
    return [EfficiencyOut.of(report) for report in found]
