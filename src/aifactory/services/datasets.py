"""The dataset registry: datasets, their versions and terms (grants: services.dataset_grants).

Vocabulary (DESIGN.md §3, domain.datasets): a *dataset* has a name, an owner project (none: a
*facility dataset*), a controller and a processor (GDPR Art. 4(7), 4(8)). Its data lies in
*versions*, numbered from 1, each a file or directory under the data root with its size,
SHA-256 and the *terms* it was registered under (classification, legal basis, purposes,
residency, retention, licence). A *grant* lets another project use the dataset for a purpose
until a date; a revoked grant keeps its row, with who revoked it, when and why.

Who does what (domain.permissions): project datasets are registered, given new versions and
granted by the owner project's owners; facility datasets by admins only. Admins, operators and
auditors see every dataset and grant; anyone else sees facility datasets, their projects' own
datasets and datasets granted to their projects (and, of a dataset they do not own, only their
projects' grants). A dataset they cannot see does not exist for them (404).

Where data lies (governance.storage): a project dataset's versions in the project's own area
of the data root, `<root>/<project>/`, their paths given relative to it; a facility dataset's
anywhere in the root, relative to the root. So a project registers only data put there for it.

Invariants: a version is immutable once registered (read-only on disk, governance.storage) and
shares no files with another version still on disk; its terms are lawful when registered
(DatasetTerms.problems, retention in the future); a grant names a purpose the newest present
version allows and ends by its retention. Registering reads and hashes the data outside any
write transaction (load → process → apply), then checks again before it writes; data refused
at that last check (its name or path taken meanwhile) stays read-only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.datasets import (
    Classification,
    DatasetTerms,
    LegalBasis,
    Residency,
    SpecialCondition,
    VersionState,
)
from aifactory.domain.names import name_problem
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit, storage
from aifactory.governance.closure import is_closed
from aifactory.services.dataset_views import (
    DatasetView,
    dataset_info,
    grant_view,
    version_view,
)
from aifactory.services.principal import Principal
from aifactory.services.programmes import no_nul
from aifactory.services.tenancy import project_by_name
from aifactory.store.db import Database
from aifactory.store.models import Dataset, DatasetGrant, DatasetVersion, Project
from aifactory.store.names import names_of

REGISTRY_LOCK = 0x41464453  # PostgreSQL advisory lock: registrations of data take turns
SHORT, LONG = 200, 20_000  # text limits: String(200) columns; descriptions
MAX_PURPOSES = 50
E = TypeVar("E", Classification, LegalBasis, SpecialCondition, Residency)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    project: str | None  # the owner project; None: a facility dataset
    controller: str
    processor: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class VersionTerms:
    """A version's terms as given: the domain's values by name, retention in UNIX seconds."""

    classification: str
    legal_basis: str | None
    special_condition: str | None
    dpia_ref: str | None
    purposes: tuple[str, ...]
    residency: str
    retention_until: float
    licence: str


TERM_FIELDS = frozenset(f.name for f in fields(VersionTerms))


# ---- registering data -----------------------------------------------------------------------


def register_dataset(
    db: Database,
    principal: Principal,
    *,
    spec: DatasetSpec,
    path: str,
    terms: VersionTerms,
    data_root: Path | None,
    now: float,
) -> DatasetView:
    """A new dataset with its first version."""
    root = _root(data_root)
    lawful(terms, now=now)
    with db.read() as session:
        project = _name_of(_new_dataset_owner(session, principal, spec))
        target = _free_path(session, root, path, project)
    stored = storage.store(root, target, project=project)
    with db.session() as session:
        owner = _new_dataset_owner(session, principal, spec)
        _take_turns(session)
        storage.check_apart(stored.path, _paths_on_disk(session))
        dataset = _insert_dataset(session, principal, spec, owner, now=now)
        _insert_version(session, principal, dataset, 1, stored, terms, now=now)
        return _view(session, principal, dataset, now=now)


def add_version(
    db: Database,
    principal: Principal,
    *,
    dataset: str,
    path: str,
    changes: Mapping[str, Any],
    data_root: Path | None,
    now: float,
) -> DatasetView:
    """A new version of `dataset`, under the newest version's terms with `changes` (fields of
    VersionTerms) applied. Earlier versions stay as they are."""
    root = _root(data_root)
    with db.read() as session:
        found, _terms = _new_version_terms(session, principal, dataset, changes, now=now)
        project = _name_of(_owner(session, found))
        target = _free_path(session, root, path, project)
    stored = storage.store(root, target, project=project)
    with db.session() as session:
        found, terms = _new_version_terms(session, principal, dataset, changes, now=now)
        _take_turns(session)
        storage.check_apart(stored.path, _paths_on_disk(session))
        number = 1 + (_newest(session, found.id).version)
        _insert_version(session, principal, found, number, stored, terms, now=now)
        return _view(session, principal, found, now=now)


def lawful(terms: VersionTerms, *, now: float) -> DatasetTerms:
    """The terms checked: each value known, the GDPR's rules kept, retention in the future."""
    checked = DatasetTerms(
        classification=_choice(Classification, terms.classification, "classification"),
        legal_basis=_maybe_choice(LegalBasis, terms.legal_basis, "legal_basis"),
        special_condition=_maybe_choice(
            SpecialCondition, terms.special_condition, "special_condition"
        ),
        dpia_ref=checked_text(terms.dpia_ref or "", "dpia_ref", SHORT, required=False) or None,
        purposes=_purposes(terms.purposes),
        residency=_choice(Residency, terms.residency, "residency"),
        retention_until=terms.retention_until,
    )
    problems = checked.problems()
    if problems:
        field, reason = problems[0]
        raise InvalidInput(reason, field=field)
    if not (math.isfinite(terms.retention_until) and terms.retention_until > now):
        raise InvalidInput("the retention period must end in the future", field="retention_until")
    checked_text(terms.licence, "licence", SHORT)
    return checked


def terms_of(version: DatasetVersion) -> DatasetTerms:
    """The terms a version was registered under, as the domain's values."""
    return DatasetTerms(
        classification=Classification(version.classification),
        legal_basis=None if version.legal_basis is None else LegalBasis(version.legal_basis),
        special_condition=(
            None
            if version.special_condition is None
            else SpecialCondition(version.special_condition)
        ),
        dpia_ref=version.dpia_ref,
        purposes=tuple(version.purposes),
        residency=Residency(version.residency),
        retention_until=version.retention_until,
    )


def _root(data_root: Path | None) -> Path:
    if data_root is None:
        raise Conflict("this facility has no data root", field="path")
    return data_root


def _new_dataset_owner(session: Session, principal: Principal, spec: DatasetSpec) -> Project | None:
    """Who will own the dataset, once the principal may register it and the spec is sound."""
    if spec.project is None:
        principal.authorize(Action.DATASET_REGISTER)
        owner = None
    else:
        owner = project_by_name(session, principal, spec.project, action=Action.DATASET_REGISTER)
        refuse_closed(session, owner, "project")
    if problem := name_problem(spec.name, lower_case=True):
        raise InvalidInput(problem, field="name")
    for field, value in (("controller", spec.controller), ("processor", spec.processor)):
        checked_text(value, field, SHORT)
    checked_text(spec.description, "description", LONG, required=False)
    if session.scalar(select(Dataset.id).where(Dataset.name == spec.name)) is not None:
        raise Conflict(f"a dataset named {spec.name!r} already exists", field="name")
    return owner


def _new_version_terms(
    session: Session,
    principal: Principal,
    name: str,
    changes: Mapping[str, Any],
    *,
    now: float,
) -> tuple[Dataset, VersionTerms]:
    found = dataset_by_name(session, principal, name)
    principal.authorize(Action.DATASET_REGISTER, found.owner_project_id, seen=True)
    refuse_closed(session, _owner(session, found), "dataset")
    for field in changes:
        if field not in TERM_FIELDS:
            raise InvalidInput("is not a term of a version", field=field)
    terms = replace(_given_terms(_newest(session, found.id)), **changes)
    lawful(terms, now=now)
    return found, terms


def _given_terms(version: DatasetVersion) -> VersionTerms:
    return VersionTerms(
        classification=version.classification,
        legal_basis=version.legal_basis,
        special_condition=version.special_condition,
        dpia_ref=version.dpia_ref,
        purposes=tuple(version.purposes),
        residency=version.residency,
        retention_until=version.retention_until,
        licence=version.licence,
    )


def _owner(session: Session, dataset: Dataset) -> Project | None:
    owner = dataset.owner_project_id
    return None if owner is None else session.get(Project, owner)


def _name_of(project: Project | None) -> str | None:
    return None if project is None else project.name


def _free_path(session: Session, root: Path, given: str, project: str | None) -> Path:
    """The data at `given`, in `project`'s area of the root (None: anywhere in the root), if no
    other version on disk overlaps it."""
    target = storage.resolve(root, given, project=project)
    storage.check_apart(target, _paths_on_disk(session))
    return target


def _paths_on_disk(session: Session) -> list[str]:
    """The paths of every version not yet erased (an erasure under way still owns its files)."""
    stmt = select(DatasetVersion.path).where(DatasetVersion.state != VersionState.ERASED.value)
    return list(session.scalars(stmt))


def _take_turns(session: Session) -> None:
    """Registrations of data take turns, so two at once cannot claim overlapping paths
    (PostgreSQL: an advisory lock until the transaction ends; SQLite writers take turns)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_LOCK})


def _insert_dataset(
    session: Session,
    principal: Principal,
    spec: DatasetSpec,
    owner: Project | None,
    *,
    now: float,
) -> Dataset:
    dataset = Dataset(
        name=spec.name,
        owner_project_id=owner.id if owner else None,
        description=spec.description.strip(),
        controller=spec.controller.strip(),
        processor=spec.processor.strip(),
        created_by=principal.name,
        created_at=now,
    )
    try:
        with session.begin_nested():  # the name is unique: a registration at once fails here
            session.add(dataset)
    except IntegrityError as exc:
        raise Conflict(f"a dataset named {spec.name!r} already exists", field="name") from exc
    record_change(
        session,
        principal,
        "dataset.register",
        dataset,
        now=now,
        detail={
            "project": owner.name if owner else None,
            "controller": dataset.controller,
            "processor": dataset.processor,
        },
    )
    return dataset


def _insert_version(
    session: Session,
    principal: Principal,
    dataset: Dataset,
    number: int,
    stored: storage.Stored,
    terms: VersionTerms,
    *,
    now: float,
) -> DatasetVersion:
    checked = lawful(terms, now=now)
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=number,
        path=str(stored.path),
        size_bytes=stored.size_bytes,
        files=stored.files,
        sha256=stored.sha256,
        classification=checked.classification.value,
        legal_basis=checked.legal_basis.value if checked.legal_basis else None,
        special_condition=checked.special_condition.value if checked.special_condition else None,
        dpia_ref=checked.dpia_ref,
        purposes=list(checked.purposes),
        residency=checked.residency.value,
        retention_until=checked.retention_until,
        licence=terms.licence.strip(),
        state=VersionState.PRESENT.value,
        registered_by=principal.name,
        registered_at=now,
        erased_at=None,
    )
    session.add(version)
    session.flush()
    detail = {k: getattr(version, k) for k in ("version", "path", "size_bytes", "files", "sha256")}
    detail.update({k: getattr(version, k) for k in sorted(TERM_FIELDS)})
    record_change(session, principal, "dataset.version", dataset, now=now, detail=detail)
    return version


# ---- reading ---------------------------------------------------------------------------------


def list_datasets(session: Session, principal: Principal, *, now: float) -> list[DatasetView]:
    stmt = select(Dataset).order_by(Dataset.name)
    if not _sees_all(principal):
        stmt = stmt.where(_visible_to(principal))
    return _views(session, principal, list(session.scalars(stmt)), now=now)


def get_dataset(session: Session, principal: Principal, *, name: str, now: float) -> DatasetView:
    return _view(session, principal, dataset_by_name(session, principal, name), now=now)


def dataset_by_name(
    session: Session, principal: Principal, name: str, *, lock: bool = False
) -> Dataset:
    """The dataset named `name` if the principal may see it; else NotFound (field dataset)."""
    stmt = select(Dataset).where(Dataset.name == no_nul(name))
    if not _sees_all(principal):
        stmt = stmt.where(_visible_to(principal))
    found = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None:
        raise NotFound(f"no dataset named {name!r} that you can see", field="dataset")
    return found


def newest_present(session: Session, dataset_id: int) -> DatasetVersion | None:
    """The dataset's newest version still present (not being or been erased), if any."""
    stmt = (
        select(DatasetVersion)
        .where(
            DatasetVersion.dataset_id == dataset_id,
            DatasetVersion.state == VersionState.PRESENT.value,
        )
        .order_by(DatasetVersion.version.desc())
    )
    return session.scalars(stmt).first()


def _newest(session: Session, dataset_id: int) -> DatasetVersion:
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
    found = session.scalars(stmt.order_by(DatasetVersion.version.desc())).first()
    assert found is not None  # a dataset is registered with its first version
    return found


def _sees_all(principal: Principal) -> bool:
    return principal.projects_for(Action.DATASET_READ) is None


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    projects = principal.projects_for(Action.DATASET_READ) or []
    granted = select(DatasetGrant.dataset_id).where(DatasetGrant.project_id.in_(projects))
    return or_(
        Dataset.owner_project_id.is_(None),
        Dataset.owner_project_id.in_(projects),
        Dataset.id.in_(granted),
    )


def _sees_grants_of(principal: Principal, dataset: Dataset) -> bool:
    owner = dataset.owner_project_id
    return _sees_all(principal) or (owner is not None and principal.may(Action.DATASET_READ, owner))


def _view(session: Session, principal: Principal, dataset: Dataset, *, now: float) -> DatasetView:
    return _views(session, principal, [dataset], now=now)[0]


def _views(
    session: Session, principal: Principal, datasets: list[Dataset], *, now: float
) -> list[DatasetView]:
    """Each dataset with its versions and the grants the principal may see, in a few queries."""
    ids = [d.id for d in datasets]
    versions: dict[int, list[DatasetVersion]] = {}
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id.in_(ids))
    for version in session.scalars(stmt.order_by(DatasetVersion.version)):
        versions.setdefault(version.dataset_id, []).append(version)
    grants: dict[int, list[DatasetGrant]] = {}
    stmt_grants = select(DatasetGrant).where(DatasetGrant.dataset_id.in_(ids))
    for grant in session.scalars(stmt_grants.order_by(DatasetGrant.id)):
        grants.setdefault(grant.dataset_id, []).append(grant)
    owners = {d.owner_project_id for d in datasets if d.owner_project_id is not None}
    names = names_of(
        session, Project, owners | {g.project_id for gs in grants.values() for g in gs}
    )
    return [
        DatasetView(
            dataset=dataset_info(d),
            project=None if d.owner_project_id is None else names[d.owner_project_id],
            versions=tuple(version_view(v) for v in versions.get(d.id, ())),
            grants=tuple(
                grant_view(g, d.name, names[g.project_id], now)
                for g in grants.get(d.id, ())
                if _sees_grants_of(principal, d) or principal.may(Action.DATASET_READ, g.project_id)
            ),
        )
        for d in datasets
    ]


def refuse_closed(session: Session, project: Project | None, field: str) -> None:
    """A closing or closed project takes no new data and no new grants."""
    if project is not None and is_closed(session, project.id):
        raise Conflict(f"project {project.name} is closed", field=field)


# ---- small checks ----------------------------------------------------------------------------


def record_change(
    session: Session,
    principal: Principal,
    action: str,
    dataset: Dataset,
    *,
    now: float,
    detail: dict[str, Any],
    project: Project | None = None,
) -> None:
    """Audit a change to `dataset`: under the grantee's project for a grant, else the owner's."""
    audit.record(
        session,
        actor=principal.name,
        action=action,
        object=f"dataset:{dataset.name}",
        at=now,
        source=principal.source,
        project_id=project.id if project else dataset.owner_project_id,
        detail=detail,
    )


def _choice(kind: type[E], value: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(v.value for v in kind)
        raise InvalidInput(f"{value!r} is not one of: {known}", field=field) from None


def _maybe_choice(kind: type[E], value: str | None, field: str) -> E | None:
    return None if value is None or not value.strip() else _choice(kind, value, field)


def _purposes(given: Iterable[str]) -> tuple[str, ...]:
    purposes = tuple(dict.fromkeys(p.strip() for p in given if p.strip()))
    if len(purposes) > MAX_PURPOSES:
        raise InvalidInput(f"at most {MAX_PURPOSES} purposes", field="purposes")
    for purpose in purposes:
        checked_text(purpose, "purposes", SHORT)
    return purposes


def checked_text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput("must not be empty", field=field)
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"at most {limit} characters, without NUL", field=field)
    return value
