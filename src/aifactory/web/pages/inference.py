"""Inference: the models a project serves (services.endpoints) and the keys its applications
call them with at the gateway, `/v1` (services.inference_keys), for each project where the user
may see them. Creating an endpoint stays in the CLI and the API (it names a finished training
job); the page shows the command.

A key is shown once, in the answer to the form that made it: never in a URL or a redirect, and
every page is sent `Cache-Control: no-store` (web.templating). An endpoint's page has a chat
box whose script (static/inference.js) calls the gateway with a key pasted into the page: the
key stays in the browser and never reaches the portal's own routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError
from aifactory.faces.inputs import (
    InferenceKeyId,
    KeyEuros,
    KeyModels,
    KeyRate,
    KeyTtlDays,
    Name,
    TokenBudget,
)
from aifactory.faces.state import StateDep
from aifactory.services import endpoints, inference_keys, tenancy
from aifactory.services.endpoints import EndpointView
from aifactory.services.inference_keys import KeyLimits, KeyView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.services.tenancy import ProjectView
from aifactory.web.forms import valid
from aifactory.web.review_forms import form_problem, see_other
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
KEY_FIELDS = ("name", "models", "token_budget", "budget_eur", "rpm", "tpm", "ttl_days")


@dataclass(frozen=True, slots=True)
class ProjectInference:
    """One project's part of the page: what it serves, its keys, and what the user may do."""

    project: str
    endpoints: list[EndpointView]
    keys: list[KeyView]
    may_serve: bool  # create or remove endpoints (ENDPOINT_MANAGE)
    may_make_keys: bool  # make and revoke keys (INFERENCE_KEY_MANAGE)


@dataclass(frozen=True, slots=True)
class MadeKey:
    """A key just made: its record, and the key itself for this one answer."""

    view: KeyView
    plain: str


@dataclass(frozen=True, slots=True)
class KeyForm:
    """The key form's fields as the API's body takes them (faces.inputs), so that the page and
    the API refuse the same input with the same words, each refusal naming its field."""

    name: str
    models: list[str] | None  # typed comma-separated; none: every model of the project
    ttl_days: float | None
    limits: KeyLimits

    @classmethod
    def read(cls, typed: dict[str, str]) -> KeyForm:
        listed = [m.strip() for m in typed["models"].split(",") if m.strip()]
        return cls(
            name=valid(Name, typed["name"].strip(), "name"),
            models=valid(KeyModels, listed, "models") if listed else None,
            ttl_days=_optional(KeyTtlDays, typed["ttl_days"].replace(",", "."), "ttl_days"),
            limits=KeyLimits(
                token_budget=_optional(TokenBudget, typed["token_budget"], "token_budget"),
                budget_eur=_optional(KeyEuros, typed["budget_eur"].replace(",", "."), "budget_eur"),
                rpm=_optional(KeyRate, typed["rpm"], "rpm"),
                tpm=_optional(KeyRate, typed["tpm"], "tpm"),
            ),
        )


@router.get("/inference")
def inference_page(
    request: Request, signed: Signed, state: StateDep, project: str | None = None
) -> Response:
    return _page(request, signed, state, project or None)


def _page(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    project: str | None,
    *,
    status_code: int = 200,
    made: MadeKey | None = None,
    failed: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    me = signed.principal
    with state.db.read() as session:
        reachable = tenancy.project_views_for(session, me, Action.ENDPOINT_READ)
        shown = (
            [tenancy.project_view(session, me, project, action=Action.ENDPOINT_READ)]
            if project is not None
            else reachable
        )
        sections = [_section(session, me, p) for p in shown]
    return render(
        request,
        "inference/index.html",
        signed,
        status_code=status_code,
        title=f"Inference of {project}" if project else "Inference",
        project=project,
        projects=[p.name for p in reachable],
        sections=sections,
        made=made,
        failed=failed,
        errors=errors or {},
        form=form or {},
        now=state.clock(),
    )


def _section(session: Session, me: Principal, project: ProjectView) -> ProjectInference:
    return ProjectInference(
        project=project.name,
        endpoints=endpoints.list_endpoints(session, me, project=project.name),
        keys=inference_keys.list_keys(session, me, project=project.name),
        may_serve=me.may(Action.ENDPOINT_MANAGE, project.id),
        may_make_keys=me.may(Action.INFERENCE_KEY_MANAGE, project.id),
    )


@router.post("/inference/{project}/keys")
def create_key(
    request: Request,
    project: str,
    signed: SignedPost,
    state: StateDep,
    name: Text = "",
    models: Text = "",
    token_budget: Text = "",
    budget_eur: Text = "",
    rpm: Text = "",
    tpm: Text = "",
    ttl_days: Text = "",
) -> Response:
    """The key is in this answer only: rendered here, never redirected to."""
    typed = {
        "name": name,
        "models": models,
        "token_budget": token_budget,
        "budget_eur": budget_eur,
        "rpm": rpm,
        "tpm": tpm,
        "ttl_days": ttl_days,
    }
    try:
        checked = KeyForm.read(typed)
        with state.db.session() as session:
            view, plain = inference_keys.create_key(
                session,
                signed.principal,
                name=checked.name,
                project=project,
                models=checked.models,
                ttl_days=checked.ttl_days,
                limits=checked.limits,
                now=state.clock(),
            )
    except AifactoryError as exc:
        errors, status = form_problem(exc, KEY_FIELDS)
        return _page(
            request,
            signed,
            state,
            project,
            status_code=status,
            failed="key",
            errors=errors,
            form=typed,
        )
    return _page(request, signed, state, project, made=MadeKey(view, plain))


def _optional(kind: Any, text: str, field: str) -> Any:
    """An optional field of the form: empty is None, else as the API's type `kind` takes it."""
    return valid(kind, text.strip(), field) if text.strip() else None


@router.post("/inference/{project}/keys/{key_id}/revoke")
def revoke_key(
    request: Request, project: str, key_id: InferenceKeyId, signed: SignedPost, state: StateDep
) -> Response:
    try:
        with state.db.session() as session:
            view = inference_keys.revoke_key(session, signed.principal, key_id, now=state.clock())
    except AifactoryError as exc:
        errors, status = form_problem(exc, ())
        failed = f"revoke-{key_id}"
        return _page(
            request, signed, state, project, status_code=status, failed=failed, errors=errors
        )
    return see_other(f"/inference?project={quote(view.project, safe='')}")


@router.post("/inference/{project}/endpoints/{name}/delete")
def delete_endpoint(project: str, name: str, signed: SignedPost, state: StateDep) -> Response:
    """Its replicas are cancelled; what it served stays counted (services.endpoints)."""
    with state.db.session() as session:
        endpoints.delete_endpoint(
            session, signed.principal, name, project=project, now=state.clock()
        )
    return see_other(f"/inference?project={quote(project, safe='')}")


@router.get("/inference/{project}/{name}")
def endpoint_page(
    request: Request, project: str, name: str, signed: Signed, state: StateDep
) -> Response:
    me = signed.principal
    with state.db.read() as session:
        owner = tenancy.project_view(session, me, project, action=Action.ENDPOINT_READ)
        view = endpoints.show_endpoint(session, me, name, project=owner.name)
    return render(
        request,
        "inference/endpoint.html",
        signed,
        title=f"Endpoint {view.name}",
        endpoint=view,
        may_serve=me.may(Action.ENDPOINT_MANAGE, owner.id),
    )
