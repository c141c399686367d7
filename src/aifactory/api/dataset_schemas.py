"""Request and response schemas for datasets, their versions and grants.

Moments are ISO 8601 (without an offset: UTC), as everywhere in the API. Schemas check types,
sizes and the names of the GDPR's values; the service checks the rules between them (a legal
basis for personal data, retention in the future, a grant within retention) and names the
field at fault.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema, field_validator

from aifactory.api.schemas import Name, Request
from aifactory.api.units import Moment, moment_at, unix
from aifactory.domain import names
from aifactory.domain.datasets import (
    Classification,
    LegalBasis,
    Residency,
    SpecialCondition,
    VersionState,
)
from aifactory.services.dataset_views import DatasetView, GrantView, VersionView
from aifactory.services.datasets import DatasetSpec, VersionTerms

# The names' rule (domain.names), in lower case: it becomes an environment variable's name.
DatasetName = Annotated[
    str,
    AfterValidator(names.check_lower_case_name),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": names.MAX_LENGTH,
            "pattern": names.LOWER_CASE_PATTERN,
            "description": f"a name in lower case ({names.RULE}), e.g. nl-books",
        }
    ),
]
Short = Annotated[str, Field(min_length=1, max_length=200)]
DataPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="a project dataset's: inside <data root>/<project>/ (relative to it, or "
        "absolute); a facility dataset's: inside the data root",
    ),
]
Purpose = Annotated[str, Field(min_length=1, max_length=200)]
Purposes = Annotated[list[Purpose], Field(max_length=50, description="what it may be used for")]
ClassificationIn = Annotated[Classification, Field(strict=False)]
LegalBasisIn = Annotated[LegalBasis, Field(strict=False, description="GDPR Art. 6(1)")]
ConditionIn = Annotated[SpecialCondition, Field(strict=False, description="GDPR Art. 9(2)")]
ResidencyIn = Annotated[Residency, Field(strict=False, description="where it may be processed")]
# Of a new version's terms, those that can be left out but never set to null.
_NOT_NULL = ("classification", "purposes", "residency", "retention_until", "licence")


class DatasetCreate(Request):
    name: DatasetName
    project: Name | None = Field(None, description="the owner project; none: a facility dataset")
    description: str = Field("", max_length=20_000)
    controller: Short = Field(description="GDPR Art. 4(7): who decides why and how")
    processor: Short = Field(description="GDPR Art. 4(8): who processes it for the controller")
    path: DataPath
    classification: ClassificationIn
    legal_basis: LegalBasisIn | None = None
    special_condition: ConditionIn | None = None
    dpia_ref: Short | None = Field(None, description="the DPIA (Art. 35) for special categories")
    purposes: Purposes = Field(default_factory=list)
    residency: ResidencyIn
    retention_until: Moment = Field(description="the data is erased by then")
    licence: Short

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            project=self.project,
            controller=self.controller,
            processor=self.processor,
            description=self.description,
        )

    def terms(self) -> VersionTerms:
        return VersionTerms(
            classification=self.classification.value,
            legal_basis=_value(self.legal_basis),
            special_condition=_value(self.special_condition),
            dpia_ref=self.dpia_ref,
            purposes=tuple(self.purposes),
            residency=self.residency.value,
            retention_until=unix(self.retention_until),
            licence=self.licence,
        )


class VersionCreate(Request):
    """A new version: its path, and the terms that change (the rest stay as the newest
    version's; null clears legal_basis, special_condition or dpia_ref)."""

    path: DataPath
    classification: ClassificationIn | None = None
    legal_basis: LegalBasisIn | None = None
    special_condition: ConditionIn | None = None
    dpia_ref: Short | None = None
    purposes: Purposes | None = None
    residency: ResidencyIn | None = None
    retention_until: Moment | None = None
    licence: Short | None = None

    @field_validator(*_NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave it out to keep the newest version's; it cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The terms given, in the service's form (VersionTerms' fields)."""
        given = {name: getattr(self, name) for name in self.model_fields_set - {"path"}}
        return {name: _term(name, value) for name, value in given.items()}


def _value(choice: Any) -> str | None:
    return None if choice is None else str(choice.value)


def _term(name: str, value: Any) -> Any:
    if name == "retention_until":
        return unix(value)
    if name == "purposes":
        return tuple(value)
    return _value(value) if isinstance(value, enum.Enum) else value


class GrantCreate(Request):
    project: Name = Field(description="the project granted use")
    purpose: Purpose = Field(description="for personal data: one of the dataset's purposes")
    until: Moment = Field(description="the grant ends then; at the latest at retention")


class RevokeBody(Request):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class VersionOut(BaseModel):
    dataset: str
    version: int
    state: VersionState = Field(description="present, erasing or erased")
    path: str = Field(description="absolute, inside the data root")
    size_bytes: int
    files: int
    sha256: str
    classification: Classification
    legal_basis: LegalBasis | None
    special_condition: SpecialCondition | None
    dpia_ref: str | None
    purposes: list[str]
    residency: Residency
    retention_until: datetime
    licence: str
    registered_by: str
    registered_at: datetime
    erased_at: datetime | None

    @classmethod
    def of(cls, dataset: str, v: VersionView) -> VersionOut:
        return cls(
            dataset=dataset,
            version=v.version,
            state=VersionState(v.state),
            path=v.path,
            size_bytes=v.size_bytes,
            files=v.files,
            sha256=v.sha256,
            classification=Classification(v.classification),
            legal_basis=None if v.legal_basis is None else LegalBasis(v.legal_basis),
            special_condition=(
                None if v.special_condition is None else SpecialCondition(v.special_condition)
            ),
            dpia_ref=v.dpia_ref,
            purposes=list(v.purposes),
            residency=Residency(v.residency),
            retention_until=moment_at(v.retention_until),
            licence=v.licence,
            registered_by=v.registered_by,
            registered_at=moment_at(v.registered_at),
            erased_at=None if v.erased_at is None else moment_at(v.erased_at),
        )


class GrantOut(BaseModel):
    id: int
    dataset: str
    project: str = Field(description="the project granted use")
    purpose: str
    until: datetime
    active: bool = Field(description="not revoked, and not yet ended")
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None

    @classmethod
    def of(cls, view: GrantView) -> GrantOut:
        g = view.grant
        return cls(
            id=g.id,
            dataset=view.dataset,
            project=view.project,
            purpose=g.purpose,
            until=moment_at(g.until),
            active=view.active,
            granted_by=g.granted_by,
            granted_at=moment_at(g.granted_at),
            revoked_at=None if g.revoked_at is None else moment_at(g.revoked_at),
            revoked_by=g.revoked_by,
            revoke_reason=g.revoke_reason,
        )


class DatasetOut(BaseModel):
    name: str
    project: str | None = Field(description="the owner project; null: a facility dataset")
    description: str
    controller: str
    processor: str
    created_by: str
    created_at: datetime
    versions: list[VersionOut] = Field(description="oldest first")
    grants: list[GrantOut] = Field(description="those you may see")

    @classmethod
    def of(cls, view: DatasetView) -> DatasetOut:
        d = view.dataset
        return cls(
            name=d.name,
            project=view.project,
            description=d.description,
            controller=d.controller,
            processor=d.processor,
            created_by=d.created_by,
            created_at=moment_at(d.created_at),
            versions=[VersionOut.of(d.name, v) for v in view.versions],
            grants=[GrantOut.of(g) for g in view.grants],
        )
