"""Jobs on the portal: the list, the submit form, a job's own page (with its live state, log
tail and training progress, polled by htmx while it is not over) and cancelling.

Everything goes through `services.jobs` (and the queue, usage and admission services the API's
job endpoints use), which check the principal: a job of a project the user has no role in is
"not found", as on the API. A page reads at most `PAGE_SIZE + 1` jobs, newest first, and pages
on by id (keyset): the thousandth page costs what the first does.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from aifactory.domain.jobs import JobState
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput, PermissionDenied
from aifactory.faces.inputs import MAX_ID, JobId, JobSubmit
from aifactory.faces.state import AppState, StateDep
from aifactory.services import efficiency as efficiency_service
from aifactory.services import jobs as service
from aifactory.services import progress as progress_service
from aifactory.services import queue as queue_service
from aifactory.services import queue_control
from aifactory.services import usage as usage_service
from aifactory.services.job_view import JobView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.services.session import Session
from aifactory.services.tenancy import ProjectView, list_project_views
from aifactory.web import charts
from aifactory.web import job_views as views
from aifactory.web.nav import may_somewhere
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
LOG_TAIL_LINES = 500
CURVE_POINTS = 200  # a loss curve's points per series: enough for 640 px
STOP_POLLING = 286  # htmx: swap this answer, then poll no more


# ---- the list ---------------------------------------------------------------------------------
@router.get("/jobs")
def jobs_list(
    request: Request,
    signed: Signed,
    state: StateDep,
    job_state: str = Query("", alias="state"),
    project: str = "",
    name: str = "",
    mine: str = "",
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    principal = signed.principal
    filters = {"state": job_state, "project": project, "name": name, "mine": mine}
    with state.db.read() as session:
        found = service.list_jobs(
            session,
            principal,
            project=project or None,
            state=_state_named(job_state),
            user=principal.name if mine else None,
            limit=PAGE_SIZE + 1,
            before_id=before,
            name_contains=name.replace("\x00", "") or None,
        )
        shown = found[:PAGE_SIZE]
        projects = list_project_views(session, principal, may=Action.JOB_READ)
    now = state.clock()
    return render(
        request,
        "jobs/list.html",
        signed,
        title="Jobs",
        rows=[(job, job.project, job.owner) for job in shown],
        times={job.id: views.times(job, now) for job in shown},
        filters=filters,
        states=list(JobState),
        projects=projects,
        older=_page_link(filters, shown[-1].id) if len(found) > PAGE_SIZE else None,
        newest=_page_link(filters, None) if before is not None else None,
        may_submit=may_somewhere(principal, Action.JOB_SUBMIT),
    )


def _state_named(value: str) -> JobState | None:
    if not value:
        return None
    try:
        return JobState(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a job state", field="state") from None


def _page_link(filters: dict[str, str], before: int | None) -> str:
    kept = {k: v for k, v in filters.items() if v}
    if before is not None:
        kept["before"] = str(before)
    return "/jobs" + (f"?{urlencode(kept)}" if kept else "")


def _default_project(projects: list[ProjectView], default_id: int | None) -> str | None:
    """The user's default project, if it is one they may submit to."""
    return next((p.name for p in projects if p.id == default_id), None)


# ---- the submit form ------------------------------------------------------------------------
@router.get("/jobs/new")
def new_job(request: Request, signed: Signed, state: StateDep) -> Response:
    form = {**views.DEFAULTS, "idempotency_key": secrets.token_urlsafe(16)}
    with state.db.read() as session:  # a facility without GPUs: a form that can run as it is
        if not service.facility_has_gpus(session):
            form["gpus"] = "0"
    return _form_page(request, signed, state, form, {})


@router.post("/jobs")
async def submit_job(request: Request, signed: SignedPost, state: StateDep) -> Response:
    """The API's checks, in the API's words: the same `JobSubmit` schema and the same
    `submit_job` service. The hidden idempotency key makes a double click one job."""
    sent = await request.form()
    form = {k: v for k, v in sent.items() if isinstance(v, str) and k != "csrf_token"}
    outcome = await run_in_threadpool(_submit, state, signed.principal, form)
    if isinstance(outcome, dict):
        return await run_in_threadpool(_form_page, request, signed, state, form, outcome, 422)
    state.on_submit()  # the control loop looks at the queue now, not at its next tick
    return RedirectResponse(f"/jobs/{outcome}", status_code=303)


def _submit(state: AppState, principal: Principal, form: dict[str, str]) -> int | dict[str, str]:
    """The new (or, for a repeated key, the earlier) job's id; else the errors by field."""
    try:
        body = JobSubmit.model_validate(views.submission_input(form))
        with state.db.session() as session:
            submitted = service.submit_job(
                session,
                principal,
                body.spec(),
                project=body.project,
                idempotency_key=body.idempotency_key,
                now=state.clock(),
            )
            return submitted.job.id
    except ValidationError as exc:
        return views.field_errors(exc)
    except AifactoryError as exc:
        return {views.error_field(exc.field): exc.message}


def _form_page(
    request: Request,
    signed: SignedIn,
    state: AppState,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    principal = signed.principal
    with state.db.read() as session:
        projects = list_project_views(session, principal, may=Action.JOB_SUBMIT)
    if not projects:
        raise PermissionDenied("you are in no project you may submit jobs to", field="project")
    default = _default_project(projects, principal.default_project_id)
    if "project" not in form and default is not None:
        form = {**form, "project": default}
    return render(
        request,
        "jobs/new.html",
        signed,
        status_code=status,
        title="Submit a job",
        form=form,
        errors=errors,
        projects=projects,
    )


# ---- one job ----------------------------------------------------------------------------------
@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: JobId, signed: Signed, state: StateDep) -> Response:
    with state.db.read() as session:
        live = _live(session, signed.principal, state, job_id)
        job: JobView = live["job"]
        datasets = service.job_datasets(session, job, now=state.clock())
        log = None
        used = None  # what it used against what it asked: once it has ended
        if live["terminal"]:
            log = _log(session, signed.principal, state, job_id)
            used = efficiency_service.job_efficiency(session, signed.principal, job_id)
        trained = _progress(session, signed.principal, state, job_id)
    return render(
        request,
        "jobs/show.html",
        signed,
        title=f"Job {job.id}: {job.name}",
        project=job.project,
        owner=job.owner,
        command=views.command_line(job),
        datasets=datasets,
        log=log,
        efficiency=used,
        **trained,
        **live,
    )


@router.get("/jobs/{job_id}/status")
def job_status(request: Request, job_id: JobId, signed: Signed, state: StateDep) -> Response:
    """The live part of the job page; answered with 286 (stop polling) once the job is over."""
    with state.db.read() as session:
        live = _live(session, signed.principal, state, job_id)
    status = STOP_POLLING if live["terminal"] else 200
    return render(request, "jobs/_live.html", signed, status_code=status, **live)


@router.get("/jobs/{job_id}/log")
def job_log(request: Request, job_id: JobId, signed: Signed, state: StateDep) -> Response:
    """The log's last lines; 286 (stop polling) once the job is over and all of it is read."""
    with state.db.read() as session:
        chunk = _log(session, signed.principal, state, job_id)
    status = STOP_POLLING if chunk.complete else 200
    return render(request, "jobs/_log.html", signed, status_code=status, log=chunk)


@router.get("/jobs/{job_id}/progress")
def job_progress(request: Request, job_id: JobId, signed: Signed, state: StateDep) -> Response:
    """The training progress the job reports; 286 (stop polling) once the job is over."""
    with state.db.read() as session:
        trained = _progress(session, signed.principal, state, job_id)
        terminal = views.is_terminal(service.show_job(session, signed.principal, job_id))
    status = STOP_POLLING if terminal else 200
    return render(request, "jobs/_progress.html", signed, status_code=status, **trained)


@router.get("/jobs/{job_id}/queue")
def job_queue(request: Request, job_id: JobId, signed: Signed, state: StateDep) -> Response:
    """Why a waiting job waits and when it may start; 286 (stop polling) once it waits no more.

    Apart from the page and polled slowly: the explanation comes from a snapshot of the
    whole facility (services.queue), far dearer than the rest of the page."""
    with state.db.read() as session:
        job = service.show_job(session, signed.principal, job_id)
        waiting = queue_service.explain_job(session, job, now=state.clock(), policy=state.policy)
    status = 200 if waiting is not None else STOP_POLLING
    return render(request, "jobs/_queue.html", signed, status_code=status, waiting=waiting)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: JobId, signed: SignedPost, state: StateDep) -> Response:
    with state.db.session() as session:
        service.cancel_job(session, signed.principal, job_id, now=state.clock())
    state.on_submit()  # the loop stops a running job (or frees the room of a waiting one) now
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/hold")
def hold_job(
    job_id: JobId,
    signed: SignedPost,
    state: StateDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Hold a waiting job until a person releases it (services.queue_control)."""
    with state.db.session() as session:
        queue_control.hold_job(
            session, signed.principal, job_id, reason=reason.strip() or None, now=state.clock()
        )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/release")
def release_job(job_id: JobId, signed: SignedPost, state: StateDep) -> Response:
    with state.db.session() as session:
        queue_control.release_job(session, signed.principal, job_id, now=state.clock())
    state.on_submit()  # it may start this round
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def _live(session: Session, principal: Principal, state: AppState, job_id: int) -> dict[str, Any]:
    """What changes while a job lives: its state, timeline, placement, usage (its place in the
    queue is `job_queue`'s, polled less often: it is worked out over the whole queue)."""
    job = service.show_job(session, principal, job_id)
    now = state.clock()
    terminal = views.is_terminal(job)
    may_change = principal.may(Action.JOB_CANCEL, job.project_id)  # cancel, hold, release
    return {
        "job": job,
        "terminal": terminal,
        "events": service.job_events(session, principal, job_id),
        "slices": views.placement(job),
        "times": views.times(job, now),
        "usage": (
            usage_service.job_usage(session, job.id, grid_g_per_kwh=state.grid_g_per_kwh)
            if terminal
            else []
        ),
        "may_cancel": not terminal and may_change,
        "may_hold": may_change and job.state == JobState.PENDING.value,
        "may_release": may_change and queue_control.held_by_a_person(job),
    }


def _progress(
    session: Session, principal: Principal, state: AppState, job_id: int
) -> dict[str, Any]:
    """The job's progress (services.progress) and its loss curve over the step."""
    found = progress_service.job_progress(
        session, principal, job_id, jobs_dir=state.jobs_dir, points=CURVE_POINTS
    )
    if found.latest is None:
        return {"progress": None, "loss_chart": None}
    curves = [charts.Series("train loss", found.train_loss)]
    if found.eval_loss:
        curves.append(charts.Series("eval loss", found.eval_loss))
    chart = charts.line_chart(
        curves, title="Loss by step", time_axis=False, x_title="step", y_title="loss"
    )
    return {"progress": found, "loss_chart": chart}


def _log(session: Session, principal: Principal, state: AppState, job_id: int) -> service.LogChunk:
    return service.read_logs(
        session, principal, job_id, locate=state.locate_log, tail_lines=LOG_TAIL_LINES
    )
