"""What services.datasets and services.dataset_grants hand back: a dataset, its versions and
its grants as plain values with names attached (the owner project, the grantee), read once
from the store and never tied to a database session.

Each field keeps the stored column's name and meaning (domain.datasets' values by name, times
in UNIX seconds), so a reader of the registry and of these views uses the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

from aifactory.store.models import Dataset, DatasetGrant, DatasetVersion


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    id: int
    name: str
    owner_project_id: int | None  # None: a facility dataset
    description: str
    controller: str  # GDPR Art. 4(7)
    processor: str  # Art. 4(8)
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class VersionView:
    """One version: where it lies, what it hashes to, and the terms it was registered under."""

    id: int
    version: int
    path: str  # absolute, resolved, under the data root
    size_bytes: int
    files: int
    sha256: str
    classification: str
    legal_basis: str | None
    special_condition: str | None
    dpia_ref: str | None
    purposes: list[str]
    residency: str
    retention_until: float
    licence: str
    state: str  # present | erasing | erased
    registered_by: str
    registered_at: float
    erased_at: float | None


@dataclass(frozen=True, slots=True)
class GrantInfo:
    id: int
    purpose: str
    until: float
    granted_by: str
    granted_at: float
    revoked_at: float | None
    revoked_by: str | None
    revoke_reason: str | None


@dataclass(frozen=True, slots=True)
class GrantView:
    grant: GrantInfo
    dataset: str
    project: str  # the grantee
    active: bool  # not revoked and not yet ended


@dataclass(frozen=True, slots=True)
class DatasetView:
    dataset: DatasetInfo
    project: str | None  # the owner project
    versions: tuple[VersionView, ...]  # oldest first
    grants: tuple[GrantView, ...]  # those the principal may see


def dataset_info(dataset: Dataset) -> DatasetInfo:
    return DatasetInfo(
        id=dataset.id,
        name=dataset.name,
        owner_project_id=dataset.owner_project_id,
        description=dataset.description,
        controller=dataset.controller,
        processor=dataset.processor,
        created_by=dataset.created_by,
        created_at=dataset.created_at,
    )


def version_view(version: DatasetVersion) -> VersionView:
    return VersionView(
        id=version.id,
        version=version.version,
        path=version.path,
        size_bytes=version.size_bytes,
        files=version.files,
        sha256=version.sha256,
        classification=version.classification,
        legal_basis=version.legal_basis,
        special_condition=version.special_condition,
        dpia_ref=version.dpia_ref,
        purposes=list(version.purposes),
        residency=version.residency,
        retention_until=version.retention_until,
        licence=version.licence,
        state=version.state,
        registered_by=version.registered_by,
        registered_at=version.registered_at,
        erased_at=version.erased_at,
    )


def grant_view(grant: DatasetGrant, dataset: str, project: str, now: float) -> GrantView:
    info = GrantInfo(
        id=grant.id,
        purpose=grant.purpose,
        until=grant.until,
        granted_by=grant.granted_by,
        granted_at=grant.granted_at,
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
        revoke_reason=grant.revoke_reason,
    )
    active = grant.revoked_at is None and grant.until > now
    return GrantView(grant=info, dataset=dataset, project=project, active=active)
