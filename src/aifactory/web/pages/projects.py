"""Portal pages: the projects one sees, each with its members and allocations; owners and admins
manage members here, admins create projects (services.tenancy checks every step: a project
keeps an owner, a project one does not see does not exist).

`form_status` is how every money and tenancy form of the portal shows a service's refusal:
next to the field at fault, with the API's status; a refusal of the whole page (not allowed,
or the page's object not there for them) goes to the error page instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import ProjectRole
from aifactory.errors import AifactoryError, Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.faces.inputs import Name
from aifactory.faces.state import StateDep
from aifactory.services import allocations, tenancy
from aifactory.services.login import SignedIn
from aifactory.web.forms import valid
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
ROLES = [role.value for role in (ProjectRole.OWNER, ProjectRole.MEMBER, ProjectRole.VIEWER)]


def form_status(exc: AifactoryError, *, page_fields: Collection[str] = ("project",)) -> int:
    """The status to re-render a form with `exc` (409 for a conflict, else 422); re-raises a
    refusal, and a NotFound for the page's own object (a field in `page_fields`)."""
    if isinstance(exc, PermissionDenied) or (
        isinstance(exc, NotFound) and exc.field in page_fields
    ):
        raise exc
    return 409 if isinstance(exc, Conflict) else 422


@router.get("/projects")
def project_list(request: Request, signed: Signed, state: StateDep) -> Response:
    return _list(request, signed, state)


@router.post("/projects")
def create_project(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    name: Annotated[str, Form()] = "",
    organisation: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
) -> Response:
    typed = {"name": name, "organisation": organisation, "owner": owner}
    try:
        with state.db.session() as session:
            tenancy.create_project(
                session,
                signed.principal,
                name=valid(Name, name.strip(), "name"),
                organisation=organisation,
                owner=owner.strip() or None,
                now=state.clock(),
            )
    except AifactoryError as exc:
        status = form_status(exc, page_fields=())
        errors = {exc.field or "name": exc.message}
        return _list(request, signed, state, errors=errors, typed=typed, status=status)
    return RedirectResponse(f"/projects/{quote(name.strip())}?saved=created", status_code=303)


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidInput("must not be empty", field=field)
    return value


def _list(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    principal = signed.principal
    with state.db.read() as session:
        projects = tenancy.list_project_views(session, principal)
        organisations = tenancy.list_organisations(session, principal)
    return render(
        request,
        "projects/list.html",
        signed,
        status_code=status,
        title="Projects",
        projects=projects,
        may_create=principal.may(Action.PROJECT_CREATE),
        organisations=sorted(o.name for o in organisations),
        errors=errors or {},
        typed=typed or {},
    )


@router.get("/projects/{name}")
def project_page(
    request: Request, name: str, signed: Signed, state: StateDep, saved: str = ""
) -> Response:
    return _detail(request, signed, state, name, saved=saved)


@router.post("/projects/{name}/members")
def add_member(
    request: Request,
    name: str,
    signed: SignedPost,
    state: StateDep,
    user: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
) -> Response:
    try:
        with state.db.session() as session:
            tenancy.add_member(
                session,
                signed.principal,
                project=name,
                user=_required(user.strip(), "user"),
                role=_role(role),
                now=state.clock(),
            )
    except AifactoryError as exc:
        status = form_status(exc)
        errors = {exc.field or "user": exc.message}
        typed = {"user": user, "role": role}
        return _detail(request, signed, state, name, errors=errors, typed=typed, status=status)
    return RedirectResponse(f"/projects/{quote(name)}?saved=member", status_code=303)


@router.post("/projects/{name}/members/{user}/remove")
def remove_member(
    request: Request, name: str, user: str, signed: SignedPost, state: StateDep
) -> Response:
    try:
        with state.db.session() as session:
            tenancy.remove_member(
                session, signed.principal, project=name, user=user, now=state.clock()
            )
    except AifactoryError as exc:
        status = form_status(exc)
        return _detail(request, signed, state, name, refusal=exc.message, status=status)
    return RedirectResponse(f"/projects/{quote(name)}?saved=removed", status_code=303)


def _role(value: str) -> ProjectRole:
    try:
        return ProjectRole(value)
    except ValueError:
        raise InvalidInput(f"must be one of: {', '.join(ROLES)}", field="role") from None


def _detail(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    name: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    principal = signed.principal
    with state.db.read() as session:
        project = tenancy.project_view(session, principal, name)
        members = tenancy.list_members(session, principal, project=project.name)
        held = []
        if principal.may(Action.ALLOCATION_READ, project.id):
            held = allocations.list_allocations(
                session, principal, project=project.name, now=state.clock()
            )
    context.setdefault("errors", {})
    context.setdefault("typed", {})
    return render(
        request,
        "projects/detail.html",
        signed,
        status_code=status,
        title=f"Project {project.name}",
        project=project,
        members=members,
        allocations=held,
        may_manage=principal.may(Action.MEMBER_MANAGE, project.id),
        roles=ROLES,
        **context,
    )
