"""First start of an empty facility: an admin, a `default` organisation and project."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.services.auth import issue_token
from aifactory.services.tenancy import add_membership
from aifactory.store.models import Organisation, Project, User

DEFAULT = "default"


def bootstrap(session: Session, *, now: float, admin_name: str = "admin") -> str | None:
    """Create the first admin and return their token once; None if the facility has users."""
    if session.scalars(select(User.id).limit(1)).first() is not None:
        return None
    admin = User(
        name=admin_name, email=None, facility_role=FacilityRole.ADMIN.value, created_at=now
    )
    org = Organisation(name=DEFAULT, kind=OrgKind.RESEARCH_INSTITUTE.value, created_at=now)
    session.add_all([admin, org])
    session.flush()
    project = Project(name=DEFAULT, organisation_id=org.id, created_at=now)
    session.add(project)
    session.flush()
    add_membership(session, project, admin, ProjectRole.OWNER, now=now)
    _, token = issue_token(session, admin, name="first admin token", now=now)
    return token
