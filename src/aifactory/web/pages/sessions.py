"""Interactive sessions on the portal (issue 20): start one with a form, follow it (its state,
idle clock and cost, polled by htmx while it is active), open it and stop it.

Everything goes through `services.interactive`, the API's own calls. Opening is a plain link
to `/sessions/ID/open` (a new tab): it makes a one-use ticket for the signed-in user, ended with
their sign-in, and sends the browser to the session's own origin (`s<ID>.<sessions domain>`),
where the proxy trades it for a cookie of that origin alone; the portal's cookie never goes
there. Whoever may not use a session (another project, a member who did not start it) is told
it does not exist, as the API tells them.

The form takes what the API's `SessionStart` takes, in a person's units: the time limit as a
duration with its unit (as the job form), the idle timeout in minutes. It is checked by the
schema as a JSON body is, so a page and the API refuse the same input with the same words.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from aifactory.domain import interactive
from aifactory.domain.interactive import MAX_IDLE_S, MIN_IDLE_S, Kind
from aifactory.domain.jobs import TERMINAL, JobState
from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import ProjectRole
from aifactory.errors import AifactoryError, Conflict
from aifactory.faces.inputs import JobId, SessionStart
from aifactory.faces.state import AppState, StateDep
from aifactory.faces.wording import reason_of
from aifactory.services import interactive as service
from aifactory.services import jobs as jobs_service
from aifactory.services.interactive import SessionView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.services.session import Session
from aifactory.services.tenancy import ProjectView, list_project_views
from aifactory.web.job_views import time_limit_s
from aifactory.web.review_forms import form_problem, number, see_other
from aifactory.web.session import Signed, SignedPost, safe_next
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
SessionId = JobId  # a session's id is its job's
STOP_POLLING = 286  # htmx: swap this answer, then poll no more
FIELDS = (
    "project",
    "kind",
    "gpus",
    "cpus",
    "memory_mb",
    "gpu_model",
    "time_limit",
    "idle_timeout",
    "datasets",
    "environment",
)
# The API's names of the fields the form takes in other units.
FORM_NAMES = {"time_limit_s": "time_limit", "idle_timeout_s": "idle_timeout"}
IDLE_RANGE = f"must be from {MIN_IDLE_S / 60:.0f} to {MAX_IDLE_S / 60:.0f} minutes"
DEFAULTS = {
    "kind": Kind.JUPYTER.value,
    "gpus": "1",
    "cpus": "1",
    "memory_mb": "4096",
    "time_limit": "8h",
    "idle_timeout": "30",
}
KINDS = ((Kind.JUPYTER.value, "JupyterLab"), (Kind.SHELL.value, "Terminal (a shell)"))
_INTEGER = re.compile(r"^[+-]?\d{1,100}$")


@dataclass(frozen=True, slots=True)
class Reach:
    """Which of the sessions they see the signed-in user may open and stop, by project: a
    button shows only where the service would let it act (services.interactive decides)."""

    me: str
    usable: dict[str, ProjectView]  # SESSION_USE: their own sessions; owners: any
    stoppable: frozenset[str]  # JOB_CANCEL

    def may_open(self, view: SessionView) -> bool:
        project = self.usable.get(view.project)
        return project is not None and (view.owner == self.me or project.role == ProjectRole.OWNER)

    def may_stop(self, view: SessionView) -> bool:
        return view.project in self.stoppable


def is_over(view: SessionView) -> bool:
    """Ended: nothing to open, stop or follow any more (a waiting session is not over)."""
    return JobState(view.state) in TERMINAL


def _reach(session: Session, principal: Principal) -> Reach:
    usable = list_project_views(session, principal, may=Action.SESSION_USE)
    stoppable = list_project_views(session, principal, may=Action.JOB_CANCEL)
    return Reach(
        me=principal.name,
        usable={p.name: p for p in usable},
        stoppable=frozenset(p.name for p in stoppable),
    )


# ---- the list and the form --------------------------------------------------------------------
@router.get("/sessions")
def sessions_page(request: Request, signed: Signed, state: StateDep) -> Response:
    form = {**DEFAULTS, "idempotency_key": secrets.token_urlsafe(16)}
    with state.db.read() as session:  # a facility without GPUs: a form that can start as it is
        if not jobs_service.facility_has_gpus(session):
            form["gpus"] = "0"
    return _page(request, signed, state, form)


def _page(
    request: Request,
    signed: SignedIn,
    state: AppState,
    form: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    me = signed.principal
    now = state.clock()
    with state.db.read() as session:
        projects = list_project_views(session, me, may=Action.JOB_SUBMIT)
        shown = service.list_sessions(session, me, now=now)
        reach = _reach(session, me)
    if "project" not in form and (default := _default_project(projects, me)) is not None:
        form = {**form, "project": default}
    return render(
        request,
        "sessions/index.html",
        signed,
        status_code=status_code,
        title="Sessions",
        form=form,
        errors=errors or {},
        projects=[(p.name, p.name) for p in projects],
        kinds=KINDS,
        sessions=shown,
        reach=reach,
        over=is_over,
        now=now,
    )


def _default_project(projects: list[ProjectView], me: Principal) -> str | None:
    """The user's default project, if it is one they may start sessions in."""
    return next((p.name for p in projects if p.id == me.default_project_id), None)


@router.post("/sessions")
def start_session(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    project: Text = "",
    kind: Text = "",
    gpus: Text = "",
    cpus: Text = "",
    memory_mb: Text = "",
    gpu_model: Text = "",
    time_limit: Text = "",
    idle_timeout: Text = "",
    datasets: Text = "",
    environment: Text = "",
    idempotency_key: Text = "",
) -> Response:
    """The API's checks in the API's words; the hidden idempotency key makes a double click
    one session."""
    typed = {
        "project": project,
        "kind": kind,
        "gpus": gpus,
        "cpus": cpus,
        "memory_mb": memory_mb,
        "gpu_model": gpu_model,
        "time_limit": time_limit,
        "idle_timeout": idle_timeout,
        "datasets": datasets,
        "environment": environment,
        "idempotency_key": idempotency_key,
    }
    outcome = _start(state, signed.principal, typed)
    if isinstance(outcome, tuple):
        errors, status = outcome
        return _page(request, signed, state, typed, errors=errors, status_code=status)
    state.on_submit()  # the control loop looks at the queue now, not at its next tick
    return see_other(f"/sessions/{outcome}")


def _start(
    state: AppState, principal: Principal, typed: Mapping[str, str]
) -> int | tuple[dict[str, str], int]:
    """The new (or, for a repeated key, the earlier) session's id; else the errors by field
    and the status to answer with."""
    try:
        body = SessionStart.model_validate_json(json.dumps(start_input(typed)))
        with state.db.session() as session:
            started = service.start_session(
                session,
                principal,
                body.spec(),
                now=state.clock(),
                idempotency_key=typed["idempotency_key"].strip() or None,
                python=state.session_python,
            )
            return started.id
    except ValidationError as exc:
        return field_errors(exc), 422
    except AifactoryError as exc:
        errors, status = form_problem(exc, (*FIELDS, *FORM_NAMES))
        return {FORM_NAMES.get(k, k): v for k, v in errors.items()}, status


def start_input(typed: Mapping[str, str]) -> dict[str, Any]:
    """The form as the JSON body the API's `SessionStart` takes: only the shape changes (digits
    into numbers, a duration into seconds, minutes into seconds, a list from commas); an empty
    optional field is left out, and every judgement is the schema's."""
    body: dict[str, Any] = {"kind": typed["kind"]}
    for key in ("project", "gpu_model", "environment"):
        if value := typed[key].strip():
            body[key] = value
    for key in ("gpus", "cpus", "memory_mb"):
        if value := typed[key].strip():
            body[key] = int(value) if _INTEGER.match(value) else value
    if limit := typed["time_limit"].strip():
        body["time_limit_s"] = time_limit_s(limit)
    if idle := typed["idle_timeout"].strip():
        body["idle_timeout_s"] = number(idle, "idle_timeout") * 60
    if listed := [d.strip() for d in typed["datasets"].split(",") if d.strip()]:
        body["datasets"] = listed
    return body


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The schema's errors by form field, worded as the API words them ("_": the form's)."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        api_name = str(error["loc"][0]) if error["loc"] else "_"
        field = FORM_NAMES.get(api_name, api_name)
        reason = reason_of(dict(error))
        if field == "idle_timeout":
            reason = IDLE_RANGE
        elif field == "time_limit":
            reason = f"{reason} (seconds)"
        errors.setdefault(field if field in FIELDS else "_", reason)
    return errors


# ---- one session ------------------------------------------------------------------------------
@router.get("/sessions/{session_id}")
def session_page(
    request: Request, session_id: SessionId, signed: Signed, state: StateDep
) -> Response:
    return _session_page(request, signed, state, session_id)


def _session_page(
    request: Request,
    signed: SignedIn,
    state: AppState,
    session_id: int,
    *,
    problem: str = "",
    status_code: int = 200,
) -> Response:
    live = _live(signed.principal, state, session_id)
    view: SessionView = live["s"]
    return render(
        request,
        "sessions/show.html",
        signed,
        status_code=status_code,
        title=f"Session {view.id}",
        problem=problem,
        **live,
    )


@router.get("/sessions/{session_id}/status")
def session_status(
    request: Request, session_id: SessionId, signed: Signed, state: StateDep
) -> Response:
    """The live part of the session's page; 286 (stop polling) once it has ended."""
    live = _live(signed.principal, state, session_id)
    status = STOP_POLLING if is_over(live["s"]) else 200
    return render(request, "sessions/_live.html", signed, status_code=status, **live)


def _live(principal: Principal, state: AppState, session_id: int) -> dict[str, Any]:
    now = state.clock()
    with state.db.read() as session:
        view = service.show_session(session, principal, session_id, now=now)
        reach = _reach(session, principal)
    return {"s": view, "reach": reach, "over": is_over, "now": now}


@router.post("/sessions/{session_id}/stop")
def stop_session(
    session_id: SessionId, signed: SignedPost, state: StateDep, back: Text = ""
) -> Response:
    """Stopped as a job is cancelled (SIGTERM, then its grace); back to the page it was on
    (`back`: a path on this site), else the session's."""
    with state.db.session() as session:
        service.stop_session(session, signed.principal, session_id, now=state.clock())
    state.on_submit()  # the loop stops it (and frees its GPUs) now
    return see_other(safe_next(back) if back else f"/sessions/{session_id}")


@router.get("/sessions/{session_id}/open")
def open_session(
    request: Request, session_id: SessionId, signed: Signed, state: StateDep
) -> Response:
    """A one-use link into the session's own origin, followed at once; never cached."""
    try:
        with state.db.session() as session:
            ticket = service.open_ticket(
                session,
                signed.principal,
                session_id,
                now=state.clock(),
                web_session_id=signed.session_id,
            )
    except Conflict as exc:  # it does not run (yet, or any more)
        return _session_page(
            request, signed, state, session_id, problem=exc.message, status_code=409
        )
    url = interactive.enter_url(
        session_id,
        ticket,
        domain=state.sessions_domain,
        scheme=request.url.scheme,
        port=request.url.port,
    )
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
