"""The identity providers a facility trusts for sign-in: an operator's TOML file, checked at
start-up so that a typo stops the facility rather than a sign-in (docs/federated-access.md)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aifactory.domain.federated_identity import EntitlementRule
from aifactory.domain.names import LOWER_CASE_PATTERN
from aifactory.domain.tenancy import OrgKind, ProjectRole

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
RESERVED_NAMES = frozenset({"password", "token"})  # services.login.BUILT_IN


class ProvidersError(ValueError):
    """The providers file cannot be used (its path and the reason in the message)."""


class ClaimNames(BaseModel):
    """Which claim holds what: providers differ (SURFconext: `schac_home_organization`,
    `eduperson_entitlement`; MyAccessID: `voperson_external_affiliation`, `entitlements`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "name"
    email: str = "email"
    preferred_username: str = "preferred_username"
    home_organisation: str = "schac_home_organization"
    entitlements: str = "eduperson_entitlement"


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str = Field(description="a regular expression the whole entitlement must match")
    project: str | None = None
    role: ProjectRole | None = None
    projects: list[str] = Field(
        default_factory=list, description="the projects a (?P<project>…) group may name"
    )
    project_prefix: str | None = Field(
        None, min_length=1, description="…or the beginning every such project's name has"
    )

    @field_validator("match")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _names_a_project_and_role(self) -> RuleConfig:
        groups = re.compile(self.match).groupindex
        if self.project is None and "project" not in groups:
            raise ValueError("give `project`, or a (?P<project>…) group in `match`")
        if self.project is None and not self.projects and self.project_prefix is None:
            raise ValueError(
                "say which projects the (?P<project>…) group may name: `projects = [...]` or "
                '`project_prefix = "..."` (entitlements must not reach every project)'
            )
        if self.role is None and "role" not in groups:
            raise ValueError("give `role`, or a (?P<role>…) group in `match`")
        return self

    def rule(self) -> EntitlementRule:
        return EntitlementRule(
            re.compile(self.match),
            self.project,
            self.role,
            frozenset(self.projects),
            self.project_prefix,
        )


class ProviderConfig(BaseModel):
    """One OpenID provider, by the name in its sign-in address (/login/NAME/start)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=LOWER_CASE_PATTERN, max_length=32)
    label: str = Field(min_length=1, max_length=80)
    issuer: str = Field(max_length=255)
    client_id: str = Field(min_length=1)
    client_secret: str | None = Field(None, description="or client_secret_file")
    client_secret_file: Path | None = None
    cli_client_id: str | None = Field(
        None, description="a public client for `aifactory login --sso` (device flow)"
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    claims: ClaimNames = Field(default_factory=ClaimNames)
    approval: Literal["automatic", "admin"] = "automatic"
    personal_project: bool = Field(
        True, description="a new person gets a project of their own, in their organisation"
    )
    organisation_kinds: dict[str, OrgKind] = Field(
        default_factory=dict,
        description="the home domains (schac_home_organization) this provider is trusted for, "
        "each with its organisation's kind; a person of another is refused unless an "
        "entitlement grants them a project",
    )
    entitlements: list[RuleConfig] = Field(default_factory=list)
    allow_http: bool = Field(False, description="plain http, on loopback only (tests, demos)")

    @field_validator("name")
    @classmethod
    def _not_built_in(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is a built-in sign-in (password, token): choose another")
        return name

    @field_validator("organisation_kinds")
    @classmethod
    def _domains_in_lower_case(cls, kinds: dict[str, OrgKind]) -> dict[str, OrgKind]:
        return {domain.strip().lower(): kind for domain, kind in kinds.items()}

    @model_validator(mode="after")
    def _sound(self) -> ProviderConfig:
        address = urlsplit(self.issuer)
        plain_ok = self.allow_http and address.hostname in LOOPBACK
        if address.scheme != "https" and not (address.scheme == "http" and plain_ok):
            raise ValueError("issuer must be an https:// address (http only on loopback)")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include 'openid'")
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise ValueError("give exactly one of client_secret and client_secret_file")
        return self

    def secret(self) -> str:
        if self.client_secret is not None:
            return self.client_secret
        assert self.client_secret_file is not None  # _sound: one of the two
        return self.client_secret_file.read_text().strip()

    def rules(self) -> tuple[EntitlementRule, ...]:
        return tuple(rule.rule() for rule in self.entitlements)


class ProvidersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: list[ProviderConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ProvidersFile:
        names = [p.name for p in self.provider]
        if len(names) != len(set(names)):
            raise ValueError("two providers have the same name")
        return self


def load_providers(path: Path) -> tuple[ProviderConfig, ...]:
    """The providers in `path`; ProvidersError naming the file and the problem otherwise."""
    try:
        data = tomllib.loads(path.read_text())
        providers = tuple(ProvidersFile.model_validate(data).provider)
        for provider in providers:
            provider.secret()  # a secret file that cannot be read stops the start, not a sign-in
        return providers
    except ValidationError as exc:
        reasons = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ProvidersError(f"{path}: {reasons}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProvidersError(f"{path}: {exc}") from exc


def _where(location: tuple[int | str, ...]) -> str:
    """`provider[0].entitlements[1].match`: where in the file, as a person reads it."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")
