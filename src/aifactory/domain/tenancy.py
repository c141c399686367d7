"""Organisations, projects, members and roles. What each role may do: domain.permissions."""

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
    """A member's role in one project."""

    VIEWER = "viewer"
    MEMBER = "member"
    OWNER = "owner"


class FacilityRole(enum.StrEnum):
    """A facility-wide role; `user` is an ordinary tenant with no facility powers."""

    USER = "user"
    AUDITOR = "auditor"
    FINANCE = "finance"
    REVIEWER = "reviewer"
    OPERATOR = "operator"
    ADMIN = "admin"
