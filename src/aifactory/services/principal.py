"""Who is asking, and the one place that decides what they may see and do in a project.

A user who is not a member of a project is told it does not exist (404), so ids of other
tenants' jobs and projects leak nothing; a member whose role is too low is told why (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import NotFound, PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    name: str
    facility_role: FacilityRole
    memberships: dict[int, ProjectRole] = field(default_factory=dict)
    default_project_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.facility_role is FacilityRole.ADMIN

    def role_in(self, project_id: int) -> ProjectRole | None:
        if self.facility_role.sees_all_projects:
            return ProjectRole.OWNER if self.is_admin else ProjectRole.VIEWER
        return self.memberships.get(project_id)

    def require(self, project_id: int, needed: ProjectRole, *, what: str = "project") -> None:
        role = self.role_in(project_id)
        if role is None:
            raise NotFound(f"{what} not found")
        if self.facility_role.runs_facility and needed is not ProjectRole.OWNER:
            return  # operators act on any job (cancel, logs) to run the facility
        if not role.at_least(needed):
            raise PermissionDenied(
                f"your role in this project is {role.value}; this needs {needed.value}"
            )

    def require_facility(self, *roles: FacilityRole) -> None:
        if self.facility_role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise PermissionDenied(f"this needs the facility role {allowed}")
