"""Organisations, projects, members and users."""

from __future__ import annotations

from fastapi import APIRouter, Response

from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.api.schemas import (
    MemberAdd,
    MemberOut,
    OrganisationCreate,
    OrganisationOut,
    ProjectCreate,
    ProjectOut,
    UserCreate,
    UserCreated,
    UserOut,
)
from aifactory.services import auth, tenancy
from aifactory.services.tenancy import ProjectView, UserView

router = APIRouter(tags=["tenancy"])


@router.post("/organisations", status_code=201, response_model=OrganisationOut)
def create_organisation(
    body: OrganisationCreate, session: WriteSession, user: CurrentUser, now: Now
) -> OrganisationOut:
    created = tenancy.create_organisation(session, user, name=body.name, kind=body.kind, now=now)
    return OrganisationOut.model_validate(created)


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(session: ReadSession, user: CurrentUser) -> list[OrganisationOut]:
    return [OrganisationOut.model_validate(o) for o in tenancy.list_organisations(session, user)]


@router.post("/projects", status_code=201, response_model=ProjectOut)
def create_project(
    body: ProjectCreate, session: WriteSession, user: CurrentUser, now: Now
) -> ProjectOut:
    project = tenancy.create_project(
        session, user, name=body.name, organisation=body.organisation, owner=body.owner, now=now
    )
    return project_out(project)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(session: ReadSession, user: CurrentUser) -> list[ProjectOut]:
    return [project_out(p) for p in tenancy.list_project_views(session, user)]


@router.get("/projects/{project}/members", response_model=list[MemberOut])
def list_members(project: str, session: ReadSession, user: CurrentUser) -> list[MemberOut]:
    return [
        MemberOut(user=m.user, role=m.role)
        for m in tenancy.list_members(session, user, project=project)
    ]


@router.put("/projects/{project}/members", response_model=MemberOut)
def add_member(
    project: str, body: MemberAdd, session: WriteSession, user: CurrentUser, now: Now
) -> MemberOut:
    member = tenancy.add_member(
        session, user, project=project, user=body.user, role=body.role, now=now
    )
    return MemberOut(user=body.user, role=member.role)


@router.delete("/projects/{project}/members/{member}", status_code=204)
def remove_member(
    project: str, member: str, session: WriteSession, user: CurrentUser, now: Now
) -> Response:
    tenancy.remove_member(session, user, project=project, user=member, now=now)
    return Response(status_code=204)


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(
    body: UserCreate, session: WriteSession, user: CurrentUser, now: Now
) -> UserCreated:
    created = tenancy.create_user(
        session, user, name=body.name, email=body.email, facility_role=body.facility_role, now=now
    )
    token = (
        auth.create_token(session, user, name="first token", now=now, user_name=created.name)[1]
        if body.token
        else None
    )
    return UserCreated(**user_out(created).model_dump(), token=token)


@router.get("/users", response_model=list[UserOut])
def list_users(session: ReadSession, user: CurrentUser) -> list[UserOut]:
    return [user_out(u) for u in tenancy.list_users(session, user)]


def project_out(project: ProjectView) -> ProjectOut:
    return ProjectOut(
        id=project.id, name=project.name, organisation=project.organisation, role=project.role
    )


def user_out(user: UserView) -> UserOut:
    return UserOut(id=user.id, name=user.name, email=user.email, facility_role=user.facility_role)
