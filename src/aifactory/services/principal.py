"""Who is asking, and the one place that decides what they may see and do in a project.

A user who is not a member of a project is told it does not exist (404), so ids of other
tenants' jobs and projects leak nothing; a member whose role is too low is told why (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aifactory.domain.permissions import MATRIX, Action, Role, allowed, who_may
from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import NotFound, PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    name: str
    facility_role: FacilityRole
    memberships: dict[int, ProjectRole] = field(default_factory=dict)
    default_project_id: int | None = None
    source: str | None = None  # the client address this request came from (for the audit log)

    @property
    def is_admin(self) -> bool:
        return self.facility_role is FacilityRole.ADMIN

    def role_in(self, project_id: int) -> ProjectRole | None:
        """Their membership, raised to what their facility role grants everywhere: admins act as
        owners of every project, operators see every project."""
        own = self.memberships.get(project_id)
        granted = {
            FacilityRole.ADMIN: ProjectRole.OWNER,
            FacilityRole.OPERATOR: ProjectRole.VIEWER,
        }.get(self.facility_role)
        roles = [r for r in (own, granted) if r is not None]
        return max(roles, key=lambda r: r.rank) if roles else None

    def require(
        self,
        project_id: int,
        needed: ProjectRole,
        *,
        what: str = "project",
        operators_too: bool = False,
    ) -> None:
        """`operators_too`: an operator may do this in any project to run the facility (e.g.
        cancel a job), though never act as a tenant (submit work charged to the project)."""
        role = self.role_in(project_id)
        if role is None:
            raise NotFound(f"{what} not found")
        if operators_too and self.facility_role.runs_facility:
            return
        if not role.at_least(needed):
            raise PermissionDenied(
                f"your role in this project is {role.value}; this needs {needed.value}"
            )

    def roles(self, project_id: int | None = None) -> frozenset[Role]:
        """Their roles for an object in `project_id` (None: a facility-wide object)."""
        held = set()
        facility = Role.of_facility(self.facility_role)
        if facility is not None:
            held.add(facility)
        own = self.memberships.get(project_id) if project_id is not None else None
        if own is not None:
            held.add(Role.of_project(own))
        return frozenset(held)

    def may(self, action: Action, project_id: int | None = None) -> bool:
        return allowed(action, self.roles(project_id))

    def authorize(self, action: Action, project_id: int | None = None, *, what: str = "") -> None:
        """The one check (domain.permissions.MATRIX). Someone with no role that sees the
        project is told the object does not exist (404); anyone else why not (403)."""
        roles = self.roles(project_id)
        if allowed(action, roles):
            return
        if project_id is not None and not allowed(Action.PROJECT_READ, roles):
            raise NotFound(f"{what or 'project'} not found")
        yours = ", ".join(sorted(r.value for r in roles)) or "none"
        raise PermissionDenied(
            f"{MATRIX[action].why} needs the role {who_may(action)} (yours: {yours})"
        )

    def require_facility(self, *roles: FacilityRole) -> None:
        if self.facility_role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise PermissionDenied(f"this needs the facility role {allowed}")
