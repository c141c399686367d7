"""Who a federated sign-in is, and what it grants: claims in, a provisioning plan out.

An institution's identity provider (or a federation proxy such as SURFconext or MyAccessID)
vouches for a person with claims. The stable identity is the issuer with `sub`: e-mail
addresses and names change, and two providers may use the same `sub`. What a person may use
comes from entitlements (eduPersonEntitlement-style URNs) matched by the operator's rules; a
facility role never comes from a claim, so a provider cannot make anyone an operator.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aifactory.domain.names import MAX_LENGTH, NAME
from aifactory.domain.tenancy import OrgKind, ProjectRole

_RANK = {ProjectRole.VIEWER: 0, ProjectRole.MEMBER: 1, ProjectRole.OWNER: 2}
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# schac_home_organization is a DNS domain (RFC: "uva.nl"); anything else is not a home.
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,64}}$){_LABEL}(\.{_LABEL})+")


@dataclass(frozen=True, slots=True)
class Claims:
    """What a provider said about the person, read from a validated ID token."""

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None
    email_verified: bool = False
    preferred_username: str | None = None
    home_organisation: str | None = None  # schac_home_organization: a DNS domain
    entitlements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntitlementRule:
    """An entitlement matching `pattern` (whole) grants a project role.

    The project and role come from the rule, or from the pattern's named groups `project` and
    `role` (e.g. `urn:mace:surf.nl:aifactory:(?P<project>[^:]+):(?P<role>owner|member|viewer)`).
    A project named by the entitlement must also be one the operator let the rule grant: in
    `projects`, or beginning with `prefix` — whoever writes entitlements (an institution, a
    collaboration's manager) must not reach every project, personal ones included.
    """

    pattern: re.Pattern[str]
    project: str | None = None
    role: ProjectRole | None = None
    projects: frozenset[str] = frozenset()
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    project: str
    role: ProjectRole


def grants(entitlements: Iterable[str], rules: Iterable[EntitlementRule]) -> tuple[Grant, ...]:
    """The project roles the entitlements grant: the highest role per project, by name."""
    best: dict[str, ProjectRole] = {}
    for rule in rules:
        for entitlement in entitlements:
            found = _granted(rule, entitlement)
            if found is None:
                continue
            current = best.get(found.project)
            if current is None or _RANK[found.role] > _RANK[current]:
                best[found.project] = found.role
    return tuple(Grant(project, best[project]) for project in sorted(best))


def _granted(rule: EntitlementRule, entitlement: str) -> Grant | None:
    matched = rule.pattern.fullmatch(entitlement)
    if matched is None:
        return None
    groups = matched.groupdict()
    project = rule.project or groups.get("project")
    role_text = rule.role.value if rule.role else groups.get("role")
    if not project or not NAME.fullmatch(project) or role_text not in set(ProjectRole):
        return None
    if rule.project is None and not _may_grant(rule, project):
        return None
    return Grant(project, ProjectRole(role_text))


def _may_grant(rule: EntitlementRule, project: str) -> bool:
    return project in rule.projects or (rule.prefix is not None and project.startswith(rule.prefix))


def home_organisation(claims: Claims, kinds: Mapping[str, OrgKind]) -> tuple[str, OrgKind] | None:
    """The organisation a person's home domain stands for, and its kind; None when the domain is
    missing, malformed, or not one the provider is trusted for (`kinds`: its list, as
    Shibboleth scopes an IdP: a provider cannot place people in another's institution)."""
    domain = (claims.home_organisation or "").strip().lower()
    kind = kinds.get(domain) if _DOMAIN.fullmatch(domain) else None
    return None if kind is None else (domain, kind)


def user_name(claims: Claims, taken: Callable[[str], bool]) -> str:
    """A facility user name for a new person: their preferred user name, else their e-mail's
    local part, else their name, else the provider's subject, made a valid name and unique with
    a number. Only a label: the identity (issuer + subject) is what signs in."""
    sources = (claims.preferred_username, _local_part(claims.email), claims.name, claims.subject)
    base = next((name for name in map(_as_name, sources) if name), "user")
    for number in range(1, 10_000):
        candidate = base if number == 1 else f"{base[: MAX_LENGTH - 1 - len(str(number))]}-{number}"
        if not taken(candidate):
            return candidate
    raise ValueError("no free user name")  # ten thousand people of one name: not a real case


def personal_project(user: str) -> str:
    """The name of the project a person gets to try the facility in (Playground access)."""
    return f"{user[: MAX_LENGTH - 3]}-pg"


def _local_part(email: str | None) -> str | None:
    return email.partition("@")[0] if email and "@" in email else None


def _as_name(text: str | None) -> str:
    """`text` in the name alphabet: accents dropped ("Jörg" → "Jorg"), the rest replaced."""
    if not text:
        return ""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = _NOT_IN_NAME.sub("-", plain).strip("._-").lower()[:MAX_LENGTH]
    return name if NAME.fullmatch(name) else ""
