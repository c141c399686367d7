"""The portal's menu: an entry shows only to whoever may do its action somewhere (a facility
role that has it, or a project role that has it in one of their projects)."""

from __future__ import annotations

from dataclasses import dataclass

from aifactory.domain.permissions import Action
from aifactory.services.principal import Principal


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str
    action: Action | None  # None: everyone signed in


MENU: tuple[NavItem, ...] = (
    NavItem("Dashboard", "/", None),
    NavItem("Jobs", "/jobs", Action.JOB_READ),
    NavItem("Cluster", "/nodes", None),
    NavItem("Projects", "/projects", Action.PROJECT_READ),
    NavItem("Allocations", "/allocations", Action.ALLOCATION_READ),
    NavItem("Proposals", "/proposals", Action.PROPOSAL_READ),
    NavItem("Usage & invoices", "/usage", Action.USAGE_READ),
    NavItem("Datasets", "/datasets", Action.DATASET_READ),
    NavItem("Software", "/software", None),
    NavItem("Inference", "/inference", Action.ENDPOINT_READ),
    NavItem("Sessions", "/sessions", Action.JOB_SUBMIT),
    NavItem("Audit log", "/audit", Action.AUDIT_READ),
    NavItem("What-if", "/whatif", Action.SCHEDULER_WHATIF),
)


def may_somewhere(principal: Principal, action: Action) -> bool:
    found = principal.projects_for(action)
    return found is None or bool(found)


def navigation(principal: Principal) -> list[NavItem]:
    return [i for i in MENU if i.action is None or may_somewhere(principal, i.action)]
