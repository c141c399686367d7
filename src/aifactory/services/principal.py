"""Who is asking, and the one check of what they may do: `authorize`, over the permission
matrix (domain.permissions.MATRIX).

Their roles for an object are their facility role plus their role in the object's project.
Whoever has no role that sees the project is told the object does not exist (404), so ids of
other tenants' jobs and projects leak nothing; anyone else who may not is told why (403). An
action only facility roles may do is refused before the object is looked up (`refuse_early`):
the answer then depends on the caller alone and says nothing about the object. Listings keep
to `projects_for(action)`. Rules that are not roles (a reviewer reviews only what is assigned
to them, a project keeps an owner…) are the services' own, on top of this check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aifactory.domain.permissions import MATRIX, PROJECT_ROLES, Action, Role, allowed, who_may
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

    def sees(self, project_id: int) -> bool:
        """Whether the project exists for them (PROJECT_READ)."""
        return self.may(Action.PROJECT_READ, project_id)

    def projects_for(self, action: Action) -> list[int] | None:
        """Where a listing for `action` reaches: None for every project (their facility role is
        in the action's row), else the projects whose membership allows it."""
        if self.may(action):
            return None
        return sorted(p for p in self.memberships if self.may(action, p))

    def authorize(
        self,
        action: Action,
        project_id: int | None = None,
        *,
        what: str = "project",
        field: str | None = None,
        seen: bool = False,
    ) -> None:
        """The one check. Refused: NotFound("<what> not found") for someone with no role that
        sees the project, unless the service already showed them the object (`seen`: a
        reviewer's assigned proposal); PermissionDenied with the roles it needs otherwise.
        Either names `field` when a field of the request asked for the action (`priority`)."""
        roles = self.roles(project_id)
        if allowed(action, roles):
            return
        if project_id is not None and not seen and not self.sees(project_id):
            raise NotFound(f"{what} not found", field=field)
        yours = (
            f"your roles here: {', '.join(r.value for r in Role if r in roles) or 'none'}"
            if project_id is not None
            else f"your facility role: {self.facility_role.value}"
        )
        raise PermissionDenied(
            f"only {who_may(action)} may {MATRIX[action].why} ({yours})", field=field
        )

    def refuse_early(self, action: Action) -> None:
        """Refuse (403) before the object is looked up when no project role is in the action's
        row and their facility role is not: nothing about the object could allow it."""
        if not MATRIX[action].roles & PROJECT_ROLES:
            self.authorize(action)
