"""Datasets: registration with a first version, new versions, and grants of their use."""

from __future__ import annotations

from fastapi import APIRouter

from aifactory.api.dataset_schemas import (
    DatasetCreate,
    DatasetOut,
    GrantCreate,
    GrantOut,
    RevokeBody,
    VersionCreate,
    VersionOut,
)
from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.units import unix
from aifactory.faces.inputs import GrantId
from aifactory.services import dataset_grants as grants
from aifactory.services import datasets as service

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetOut])
def list_datasets(session: ReadSession, user: CurrentUser, now: Now) -> list[DatasetOut]:
    """The datasets you may see, by name, each with its versions and grants."""
    return [DatasetOut.of(v) for v in service.list_datasets(session, user, now=now)]


@router.post("", status_code=201, response_model=DatasetOut)
def register_dataset(
    body: DatasetCreate, state: StateDep, user: CurrentUser, now: Now
) -> DatasetOut:
    """Register a dataset with its first version: the data under `path` is made read-only and
    hashed (SHA-256)."""
    view = service.register_dataset(
        state.db,
        user,
        spec=body.spec(),
        path=body.path,
        terms=body.terms(),
        data_root=state.data_root,
        now=now,
    )
    return DatasetOut.of(view)


@router.get("/{name}", response_model=DatasetOut)
def get_dataset(name: str, session: ReadSession, user: CurrentUser, now: Now) -> DatasetOut:
    return DatasetOut.of(service.get_dataset(session, user, name=name, now=now))


@router.post("/{name}/versions", status_code=201, response_model=VersionOut)
def add_version(
    name: str, body: VersionCreate, state: StateDep, user: CurrentUser, now: Now
) -> VersionOut:
    """A new version, under the newest version's terms but for those given."""
    view = service.add_version(
        state.db,
        user,
        dataset=name,
        path=body.path,
        changes=body.changes(),
        data_root=state.data_root,
        now=now,
    )
    return VersionOut.of(view.dataset.name, view.versions[-1])


@router.get("/{name}/grants", response_model=list[GrantOut])
def list_grants(name: str, session: ReadSession, user: CurrentUser, now: Now) -> list[GrantOut]:
    return [GrantOut.of(g) for g in grants.list_grants(session, user, dataset=name, now=now)]


@router.post("/{name}/grants", status_code=201, response_model=GrantOut)
def grant_dataset(
    name: str, body: GrantCreate, session: WriteSession, user: CurrentUser, now: Now
) -> GrantOut:
    """Let a project use the dataset for a purpose until a date (within its retention)."""
    granted = grants.grant_dataset(
        session,
        user,
        dataset=name,
        project=body.project,
        purpose=body.purpose,
        until=unix(body.until),
        now=now,
    )
    return GrantOut.of(granted)


@router.post("/{name}/grants/{grant_id}/revoke", response_model=GrantOut)
def revoke_grant(
    name: str,
    grant_id: GrantId,
    body: RevokeBody,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
) -> GrantOut:
    revoked = grants.revoke_grant(
        session, user, dataset=name, grant_id=grant_id, reason=body.reason, now=now
    )
    return GrantOut.of(revoked)
