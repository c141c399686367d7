"""Jobs: submit, list, show, reprioritise, cancel, events, logs and training progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from aifactory.api.body import parse_body
from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.money_schemas import JobDatasetOut, JobDetailOut, UsageRecordOut
from aifactory.api.progress_schemas import ProgressOut
from aifactory.api.queue_control_schemas import CancelResultOut
from aifactory.api.schemas import (
    MAX_ID,
    JobEventOut,
    JobOut,
    JobPriority,
    JobSubmit,
    LogsOut,
    QueuedJobOut,
    QueueInfo,
)
from aifactory.domain.jobs import JobState
from aifactory.errors import AifactoryError
from aifactory.faces.inputs import JobCancelMany, JobHold, JobId, JobUpdate
from aifactory.services import jobs as service
from aifactory.services import progress as progress_service
from aifactory.services import queue as queue_service
from aifactory.services import queue_control
from aifactory.services import usage as usage_service
from aifactory.services.job_view import JobView
from aifactory.services.jobs import Submission


class _JobRoute(APIRoute):
    """A route under /jobs: a path the collection acts on (/jobs/cancel) names no job, so that
    GET /jobs/cancel is a 405 (Allow: POST), not job "cancel" refused for not being a number."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if child.get("path_params", {}).get("job_id") in _COLLECTION_ACTIONS:
            return Match.NONE, {}
        return match, child


_COLLECTION_ACTIONS = frozenset({"cancel"})
router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=_JobRoute)
queue_router = APIRouter(prefix="/queue", tags=["jobs"])


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": JobSubmit.model_json_schema()}},
        }
    },
)
async def submit_job(
    request: Request,
    user: CurrentUser,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
) -> Response:
    """Submit a job. Answered after the commit (group-committed with concurrent submits).

    The body is parsed and validated in one pass from its bytes (the facility's hottest
    route); errors come out exactly as FastAPI's own validation errors do.
    """
    body = parse_body(JobSubmit, await request.body())
    submission = Submission(
        user, body.spec(), body.project, body.idempotency_key or idempotency_key
    )
    outcome = await state.committer.submit(submission)
    if isinstance(outcome, AifactoryError):
        raise outcome
    body_json = JobOut.of(outcome.job, outcome.project, outcome.user).model_dump_json()
    # Serialised once here; FastAPI would validate the model a second time.
    return Response(
        body_json, status_code=201 if outcome.created else 200, media_type="application/json"
    )


@router.get("", response_model=list[JobOut])
def list_jobs(
    session: ReadSession,
    user: CurrentUser,
    project: str | None = None,
    state: JobState | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    array: Annotated[int | None, Query(ge=1, le=MAX_ID, description="an array's tasks")] = None,
) -> list[JobOut]:
    found = service.list_jobs(
        session,
        user,
        project=project,
        state=state,
        user=owner,
        limit=limit,
        before_id=before_id,
        array_id=array,
    )
    return [_out(job) for job in found]


@router.get("/{job_id}", response_model=JobDetailOut)
def show_job(
    job_id: JobId, session: ReadSession, user: CurrentUser, now: Now, state: StateDep
) -> JobDetailOut:
    job = service.show_job(session, user, job_id)
    events = [JobEventOut.of(e) for e in service.job_events(session, user, job_id)]
    waiting = queue_service.explain_job(session, job, now=now, policy=state.policy)
    used = usage_service.job_usage(session, job.id, grid_g_per_kwh=state.grid_g_per_kwh)
    return JobDetailOut(
        **_out(job).model_dump(),
        events=events,
        queue=QueueInfo.of(waiting) if waiting else None,
        usage=[UsageRecordOut.of(row) for row in used],
        datasets=[JobDatasetOut.of(use) for use in service.job_datasets(session, job, now=now)],
    )


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    job_id: JobId, session: WriteSession, user: CurrentUser, now: Now, state: StateDep
) -> JobOut:
    job = service.cancel_job(session, user, job_id, now=now)
    session.info["after_commit"] = state.on_submit
    return _out(job)


@router.put("/{job_id}/priority", response_model=JobOut)
def set_priority(
    job_id: JobId,
    body: JobPriority,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> JobOut:
    """Operators and admins: change a waiting job's priority (tenants submit at 0 or below)."""
    job = service.set_priority(session, user, job_id, priority=body.priority, now=now)
    session.info["after_commit"] = state.on_submit  # reorder the queue now, not at the next tick
    return _out(job)


@router.post("/cancel", response_model=list[CancelResultOut])
def cancel_jobs(
    body: JobCancelMany, session: WriteSession, user: CurrentUser, now: Now, state: StateDep
) -> list[CancelResultOut]:
    """Cancel many jobs: the ids given, or every job not ended that you may cancel and that
    matches all the filters given. Answered job by job: cancelled, stopping, already ended,
    not found (a job you may not see is answered as one that does not exist) or refused."""
    selection = queue_control.Selection(
        ids=tuple(body.ids),
        states=tuple(body.states),
        name_contains=body.name,
        mine=body.mine,
        project=body.project,
    )
    found = queue_control.cancel_jobs(session, user, selection, now=now, dry_run=body.dry_run)
    if not body.dry_run:
        session.info["after_commit"] = state.on_submit  # their room is free now
    return [CancelResultOut.of(result) for result in found]


@router.post("/{job_id}/hold", response_model=JobOut)
def hold_job(
    job_id: JobId,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    body: JobHold | None = None,
) -> JobOut:
    """Hold a waiting job: no round starts it until a person releases it."""
    reason = body.reason if body is not None else None
    return _out(queue_control.hold_job(session, user, job_id, reason=reason, now=now))


@router.post("/{job_id}/release", response_model=JobOut)
def release_job(
    job_id: JobId, session: WriteSession, user: CurrentUser, now: Now, state: StateDep
) -> JobOut:
    """Release a job a person held (a hold for data or budget is the control loop's to lift:
    409, saying what lifts it)."""
    job = queue_control.release_job(session, user, job_id, now=now)
    session.info["after_commit"] = state.on_submit  # it may start this round
    return _out(job)


@router.patch("/{job_id}", response_model=JobOut)
def update_job(
    job_id: JobId,
    body: JobUpdate,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> JobOut:
    """Change a waiting job's name, time limit or priority (above 0: operators and admins)."""
    changes = queue_control.JobChanges(
        name=body.name, time_limit_s=body.time_limit_s, priority=body.priority
    )
    job = queue_control.update_job(session, user, job_id, changes, now=now)
    session.info["after_commit"] = state.on_submit  # the queue's order may have changed
    return _out(job)


@router.get("/{job_id}/logs", response_model=LogsOut)
def job_logs(
    job_id: JobId,
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    tail: Annotated[int | None, Query(ge=0, le=100_000)] = None,
) -> LogsOut:
    chunk = service.read_logs(
        session, user, job_id, locate=state.locate_log, offset=offset, tail_lines=tail
    )
    return LogsOut(text=chunk.text, offset=chunk.offset, size=chunk.size, complete=chunk.complete)


@router.get("/{job_id}/progress", response_model=ProgressOut)
def job_progress(
    job_id: JobId,
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    points: Annotated[int, Query(ge=2, le=5000)] = progress_service.CURVE_POINTS,
) -> ProgressOut:
    """What the job reported in its progress file (docs/recipes.md): the latest figures, the
    last records, the loss curves thinned to `points` points, and the GPU-seconds each
    preemption lost (the work after the run's last checkpoint)."""
    found = progress_service.job_progress(
        session, user, job_id, jobs_dir=state.jobs_dir, points=points
    )
    return ProgressOut.of(found)


@queue_router.get("", response_model=list[QueuedJobOut])
def show_queue(
    session: ReadSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
    project: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[QueuedJobOut]:
    """Waiting jobs you can see, in queue order, each with why it waits and an estimate."""
    found = queue_service.queue(
        session, user, now=now, project=project, limit=limit, policy=state.policy
    )
    return [
        QueuedJobOut(**_out(q.job).model_dump(), queue=QueueInfo.of(q.explanation)) for q in found
    ]


def _out(job: JobView) -> JobOut:
    return JobOut.of(job, job.project, job.owner)
