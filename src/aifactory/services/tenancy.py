"""Organisations, projects, members and users.

Admins create organisations, projects and users; a project's owners manage its members; every
member sees the project and its member list. Operators see everything and change nothing here
(domain.permissions). On top of the roles: a project keeps at least one owner.

The faces (api, web) get views with names (`ProjectView` carries its organisation's name and the
caller's role in it); `project_by_name`, `user_by_name` and `list_projects` hand rows to the
other services, which build their own views.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.errors import Conflict, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.store.models import Member, Organisation, Project, User


@dataclass(frozen=True, slots=True)
class OrganisationView:
    id: int
    name: str
    kind: OrgKind


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: int
    name: str
    organisation: str
    organisation_kind: OrgKind
    created_at: float
    role: ProjectRole | None  # the caller's role in it; None: they see it by facility role


@dataclass(frozen=True, slots=True)
class MemberView:
    user: str
    role: ProjectRole


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    name: str
    email: str | None
    facility_role: FacilityRole


@dataclass(frozen=True, slots=True)
class MeView:
    """The caller: their default project and the projects they are a member of."""

    name: str
    facility_role: FacilityRole
    default_project: str | None
    projects: tuple[ProjectView, ...]


def create_organisation(
    session: Session, principal: Principal, *, name: str, kind: OrgKind, now: float
) -> OrganisationView:
    principal.authorize(Action.ORGANISATION_CREATE)
    org = Organisation(name=name, kind=kind.value, created_at=now)
    _insert_unique(session, org, f"an organisation named {name!r} already exists", "name")
    audit.record(
        session,
        actor=principal.name,
        action="organisation.create",
        object=f"organisation:{name}",
        at=now,
        source=principal.source,
        detail={"kind": kind.value},
    )
    return _organisation_view(org)


def list_organisations(session: Session, principal: Principal) -> list[OrganisationView]:
    """The organisations of the projects the principal sees (every one for facility roles)."""
    stmt = select(Organisation).order_by(Organisation.id)
    projects = principal.projects_for(Action.PROJECT_READ)
    if projects is not None:
        visible = select(Project.organisation_id).where(Project.id.in_(projects))
        stmt = stmt.where(Organisation.id.in_(visible))
    return [_organisation_view(org) for org in session.scalars(stmt)]


def _organisation_view(org: Organisation) -> OrganisationView:
    return OrganisationView(org.id, org.name, OrgKind(org.kind))


def create_project(
    session: Session,
    principal: Principal,
    *,
    name: str,
    organisation: str,
    owner: str | None,
    now: float,
) -> ProjectView:
    principal.authorize(Action.PROJECT_CREATE)
    org = session.scalars(select(Organisation).where(Organisation.name == organisation)).first()
    if org is None:
        raise NotFound(f"no organisation named {organisation!r}", field="organisation")
    owner_user = user_by_name(session, owner or principal.name, field="owner")
    project = Project(name=name, organisation_id=org.id, created_at=now)
    _insert_unique(session, project, f"a project named {name!r} already exists", "name")
    add_membership(session, project, owner_user, ProjectRole.OWNER, now=now)
    audit.record(
        session,
        actor=principal.name,
        action="project.create",
        object=f"project:{name}",
        at=now,
        source=principal.source,
        project_id=project.id,
        detail={"organisation": org.name, "owner": owner_user.name},
    )
    return _project_view(principal, project, org)


def list_projects(session: Session, principal: Principal) -> list[Project]:
    """The rows of the projects the principal sees, by id (for services; faces take views)."""
    return list(session.scalars(select(Project).where(_seen(principal)).order_by(Project.id)))


def list_project_views(
    session: Session, principal: Principal, *, may: Action | None = None
) -> list[ProjectView]:
    """The projects the principal sees, by id; with `may`, only those where they may do it."""
    stmt = select(Project, Organisation).join(Organisation).where(_seen(principal))
    return [
        _project_view(principal, project, org)
        for project, org in session.execute(stmt.order_by(Project.id))
        if may is None or principal.may(may, project.id)
    ]


def _seen(principal: Principal) -> ColumnElement[bool]:
    projects = principal.projects_for(Action.PROJECT_READ)
    return true() if projects is None else Project.id.in_(projects)


def project_views_for(session: Session, principal: Principal, action: Action) -> list[ProjectView]:
    """The projects where the principal may do `action`, by id: a facility role in the action's
    row reaches every project, whether or not it sees them (finance reads endpoints' usage)."""
    stmt = select(Project, Organisation).join(Organisation)
    if (scope := principal.projects_for(action)) is not None:
        stmt = stmt.where(Project.id.in_(scope))
    return [
        _project_view(principal, project, org)
        for project, org in session.execute(stmt.order_by(Project.id))
    ]


def project_view(
    session: Session, principal: Principal, name: str, *, action: Action = Action.PROJECT_READ
) -> ProjectView:
    """The project named `name` with its organisation, if they see it or may do `action` in it
    (see project_by_name)."""
    project = project_by_name(session, principal, name, action=action)
    return _project_view(principal, project, session.get_one(Organisation, project.organisation_id))


def _project_view(principal: Principal, project: Project, org: Organisation) -> ProjectView:
    return ProjectView(
        id=project.id,
        name=project.name,
        organisation=org.name,
        organisation_kind=OrgKind(org.kind),
        created_at=project.created_at,
        role=principal.memberships.get(project.id),
    )


def project_by_name(
    session: Session,
    principal: Principal,
    name: str,
    *,
    action: Action = Action.PROJECT_READ,
    field: str = "project",
) -> Project:
    """The project named `name` if the principal may do `action` in it: NotFound if it does not
    exist for them (they neither see it nor may do `action` there), else the matrix decides."""
    principal.refuse_early(action)
    project = session.scalars(select(Project).where(Project.name == _no_nul(name))).first()
    if project is None or not (principal.sees(project.id) or principal.may(action, project.id)):
        raise NotFound(f"no project named {name!r} that you can see", field=field)
    principal.authorize(action, project.id)
    return project


def list_members(session: Session, principal: Principal, *, project: str) -> list[MemberView]:
    """The project's members by user name, to whoever sees the project."""
    found = project_by_name(session, principal, project)
    stmt = (
        select(User.name, Member.role)
        .join(User, User.id == Member.user_id)
        .where(Member.project_id == found.id)
        .order_by(User.name)
    )
    return [MemberView(user, ProjectRole(role)) for user, role in session.execute(stmt)]


def add_member(
    session: Session,
    principal: Principal,
    *,
    project: str,
    user: str,
    role: ProjectRole,
    now: float,
) -> MemberView:
    found = project_by_name(session, principal, project, action=Action.MEMBER_MANAGE)
    target = user_by_name(session, user)
    existing = session.get(Member, (found.id, target.id))
    if existing is not None:
        if role is not ProjectRole.OWNER:
            _keep_an_owner(session, found, existing, field="role")
        before, existing.role = existing.role, role.value
        existing.entitled_by = None  # a person's choice now: sign-ins leave it alone
        member = existing
    else:
        before, member = None, add_membership(session, found, target, role, now=now)
    audit.record(
        session,
        actor=principal.name,
        action="member.add" if before is None else "member.role",
        object=f"user:{target.name}",
        at=now,
        source=principal.source,
        project_id=found.id,
        detail={"project": found.name, "role": role.value, "was": before},
    )
    return MemberView(target.name, ProjectRole(member.role))


def remove_member(
    session: Session, principal: Principal, *, project: str, user: str, now: float
) -> None:
    found = project_by_name(session, principal, project, action=Action.MEMBER_MANAGE)
    target = user_by_name(session, user)
    member = session.get(Member, (found.id, target.id))
    if member is None:
        raise NotFound(f"{user!r} is not a member of {project!r}", field="user")
    _keep_an_owner(session, found, member, field="user")
    session.delete(member)
    if target.default_project_id == found.id:
        target.default_project_id = None
    audit.record(
        session,
        actor=principal.name,
        action="member.remove",
        object=f"user:{target.name}",
        at=now,
        source=principal.source,
        project_id=found.id,
        detail={"project": found.name, "role": member.role},
    )


def _keep_an_owner(session: Session, project: Project, member: Member, *, field: str) -> None:
    """Refuse to remove or demote `member` when they are the project's only owner."""
    owners = session.scalars(
        select(Member).where(
            Member.project_id == project.id, Member.role == ProjectRole.OWNER.value
        )
    ).all()
    if member.role == ProjectRole.OWNER.value and len(owners) == 1:
        raise Conflict("a project keeps at least one owner; add another owner first", field=field)


def add_membership(
    session: Session, project: Project, user: User, role: ProjectRole, *, now: float
) -> Member:
    member = Member(project_id=project.id, user_id=user.id, role=role.value, created_at=now)
    session.add(member)
    if user.default_project_id is None:
        user.default_project_id = project.id
    session.flush()
    return member


def create_user(
    session: Session,
    principal: Principal,
    *,
    name: str,
    email: str | None,
    facility_role: FacilityRole,
    now: float,
) -> UserView:
    principal.authorize(Action.USER_CREATE)
    user = User(name=name, email=email, facility_role=facility_role.value, created_at=now)
    _insert_unique(session, user, f"a user named {name!r} already exists", "name")
    audit.record(
        session,
        actor=principal.name,
        action="user.create",
        object=f"user:{name}",
        at=now,
        source=principal.source,
        detail={"facility_role": facility_role.value},
    )
    return _user_view(user)


def list_users(session: Session, principal: Principal) -> list[UserView]:
    principal.authorize(Action.USER_LIST)
    return [_user_view(user) for user in session.scalars(select(User).order_by(User.id))]


def _user_view(user: User) -> UserView:
    return UserView(user.id, user.name, user.email, FacilityRole(user.facility_role))


def user_by_name(session: Session, name: str, *, field: str = "user") -> User:
    user = session.scalars(select(User).where(User.name == _no_nul(name))).first()
    if user is None:
        raise NotFound(f"no user named {name!r}", field=field)
    return user


def _no_nul(name: str) -> str:
    """PostgreSQL refuses NUL even in a query, and no name holds one: look up "" (no match)."""
    return "" if "\x00" in name else name


def me(session: Session, principal: Principal) -> MeView:
    """Who the caller is: their default project, and their projects (member of) by id."""
    default = principal.default_project_id
    default_row = session.get(Project, default) if default is not None else None
    return MeView(
        name=principal.name,
        facility_role=principal.facility_role,
        default_project=default_row.name if default_row is not None else None,
        projects=tuple(p for p in list_project_views(session, principal) if p.role is not None),
    )


def set_default_project(session: Session, principal: Principal, *, project: str) -> MeView:
    """Make `project` (one they see) where their jobs go by default; the caller as now."""
    found = project_by_name(session, principal, project)
    user = session.get(User, principal.user_id)
    assert user is not None
    user.default_project_id = found.id
    return me(session, replace(principal, default_project_id=found.id))


def _insert_unique(session: Session, row: object, message: str, field: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(message, field=field) from exc
