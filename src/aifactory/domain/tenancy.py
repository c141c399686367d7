"""Organisations, projects, members and roles, and what each role may do."""

from __future__ import annotations

import enum


class OrgKind(enum.StrEnum):
    UNIVERSITY = "university"
    RESEARCH_INSTITUTE = "research_institute"
    GOVERNMENT = "government"
    STARTUP = "startup"
    SME = "sme"
    COMPANY = "company"


class ProjectRole(enum.StrEnum):
    """A member's role in one project. Ordered: each role can do what the ones below can."""

    VIEWER = "viewer"
    MEMBER = "member"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _PROJECT_RANK[self]

    def at_least(self, other: ProjectRole) -> bool:
        return self.rank >= other.rank


_PROJECT_RANK = {ProjectRole.VIEWER: 0, ProjectRole.MEMBER: 1, ProjectRole.OWNER: 2}


class FacilityRole(enum.StrEnum):
    """A facility-wide role; `user` is an ordinary tenant with no facility powers; `auditor`
    reads (and verifies) the whole audit log and nothing more."""

    USER = "user"
    AUDITOR = "auditor"
    FINANCE = "finance"
    REVIEWER = "reviewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def sees_all_projects(self) -> bool:
        return self in (FacilityRole.OPERATOR, FacilityRole.ADMIN)

    @property
    def reads_whole_audit_log(self) -> bool:
        return self in (FacilityRole.AUDITOR, FacilityRole.ADMIN)

    @property
    def runs_facility(self) -> bool:
        return self in (FacilityRole.OPERATOR, FacilityRole.ADMIN)
