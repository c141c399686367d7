"""Grants: another project's use of a dataset for a stated purpose until a date.

A grant names a purpose the dataset's newest present version allows (for personal data, one of
its stated purposes: purpose limitation, GDPR Art. 5(1)(b)) and ends by that version's retention.
The owner project never needs one. Granting and revoking are the dataset owner's (admins', for
facility datasets); a revoked grant keeps its row, with who revoked it, when and why, and stops
new attempts of the jobs that relied on it (governance.admission).
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.datasets import grant_problem
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.services.dataset_views import GrantView, grant_view
from aifactory.services.datasets import (
    LONG,
    SHORT,
    checked_text,
    dataset_by_name,
    get_dataset,
    newest_present,
    record_change,
    refuse_closed,
    terms_of,
)
from aifactory.services.principal import Principal
from aifactory.services.programmes import no_nul, time_text
from aifactory.store.models import Dataset, DatasetGrant, Project


def list_grants(
    session: Session, principal: Principal, *, dataset: str, now: float
) -> list[GrantView]:
    return list(get_dataset(session, principal, name=dataset, now=now).grants)


def grant_dataset(
    session: Session,
    principal: Principal,
    *,
    dataset: str,
    project: str,
    purpose: str,
    until: float,
    now: float,
) -> GrantView:
    """Let `project` use `dataset` for `purpose` until `until`, within the newest present
    version's terms."""
    found = dataset_by_name(session, principal, dataset, lock=True)
    principal.authorize(Action.DATASET_GRANT, found.owner_project_id, seen=True)
    grantee = _grantee(session, found, project)
    purpose = checked_text(purpose, "purpose", SHORT)
    _check_grant_terms(session, found, purpose=purpose, until=until, now=now)
    _check_not_granted(session, found, grantee, purpose, now=now)
    grant = DatasetGrant(
        dataset_id=found.id,
        project_id=grantee.id,
        purpose=purpose,
        until=until,
        granted_by=principal.name,
        granted_at=now,
    )
    session.add(grant)
    session.flush()
    detail = {"grant": grant.id, "project": grantee.name, "purpose": purpose, "until": until}
    record_change(
        session, principal, "dataset.grant", found, now=now, project=grantee, detail=detail
    )
    return grant_view(grant, found.name, grantee.name, now)


def revoke_grant(
    session: Session,
    principal: Principal,
    *,
    dataset: str,
    grant_id: int,
    reason: str,
    now: float,
) -> GrantView:
    """End a grant now, saying why. Its row stays, as the record of what was allowed."""
    found = dataset_by_name(session, principal, dataset)
    principal.authorize(Action.DATASET_GRANT, found.owner_project_id, seen=True)
    reason = checked_text(reason, "reason", LONG)
    stmt = select(DatasetGrant).where(
        DatasetGrant.id == grant_id, DatasetGrant.dataset_id == found.id
    )
    grant = session.scalars(stmt.with_for_update()).first()
    if grant is None:
        raise NotFound(f"dataset {found.name} has no grant {grant_id}", field="grant_id")
    if grant.revoked_at is not None:
        raise Conflict(
            f"grant {grant_id} was revoked already, by {grant.revoked_by} at "
            f"{time_text(grant.revoked_at)}",
            field="grant_id",
        )
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, principal.name, reason
    grantee = session.get(Project, grant.project_id)
    assert grantee is not None  # a foreign key
    detail = {"grant": grant.id, "project": grantee.name, "reason": reason}
    record_change(
        session, principal, "dataset.revoke", found, now=now, project=grantee, detail=detail
    )
    return grant_view(grant, found.name, grantee.name, now)


def _grantee(session: Session, dataset: Dataset, name: str) -> Project:
    grantee = session.scalars(select(Project).where(Project.name == no_nul(name))).first()
    if grantee is None:
        raise NotFound(f"no project named {name!r}", field="project")
    refuse_closed(session, grantee, "project")
    if grantee.id == dataset.owner_project_id:
        raise InvalidInput(
            f"project {grantee.name} owns {dataset.name} and uses it without a grant",
            field="project",
        )
    return grantee


def _check_grant_terms(
    session: Session, dataset: Dataset, *, purpose: str, until: float, now: float
) -> None:
    newest = newest_present(session, dataset.id)
    if newest is None:
        raise Conflict(f"dataset {dataset.name} has no version present to grant", field="dataset")
    if not math.isfinite(until):
        raise InvalidInput("must be a moment", field="until")
    problem = grant_problem(terms_of(newest), purpose=purpose, until=until, now=now)
    if problem is not None:
        field, reason = problem
        if field == "until" and until > newest.retention_until:
            reason += f" (version {newest.version}: until {time_text(newest.retention_until)})"
        raise InvalidInput(reason, field=field)


def _check_not_granted(
    session: Session, dataset: Dataset, grantee: Project, purpose: str, *, now: float
) -> None:
    stmt = select(DatasetGrant).where(
        DatasetGrant.dataset_id == dataset.id,
        DatasetGrant.project_id == grantee.id,
        DatasetGrant.purpose == purpose,
        DatasetGrant.revoked_at.is_(None),
        DatasetGrant.until > now,
    )
    held = session.scalars(stmt).first()
    if held is not None:
        raise Conflict(
            f"project {grantee.name} holds grant {held.id} for this purpose until "
            f"{time_text(held.until)}; revoke it first to change it",
            field="project",
        )


# ---- for other services: may a project use a dataset? ---------------------------------------


def usable_grant(
    session: Session, dataset_id: int, project_id: int, now: float
) -> DatasetGrant | None:
    """The grant that lets the project use the dataset now (not revoked, `until` after now),
    the one ending last if several; None when there is none.

    The owner project never needs a grant to use its own dataset, so this is None for it:
    ask `may_use` whether a project may use a dataset at all."""
    stmt = (
        select(DatasetGrant)
        .where(
            DatasetGrant.dataset_id == dataset_id,
            DatasetGrant.project_id == project_id,
            DatasetGrant.revoked_at.is_(None),
            DatasetGrant.until > now,
        )
        .order_by(DatasetGrant.until.desc(), DatasetGrant.id)
    )
    return session.scalars(stmt).first()


def may_use(session: Session, dataset: Dataset, project_id: int, now: float) -> bool:
    """Whether the project may use the dataset now: it owns it (the owner project always may,
    without a grant), or it holds a usable grant. Facility datasets have no owner: every
    project needs a grant. Whether a version is present is the caller's question."""
    if dataset.owner_project_id == project_id:
        return True
    return usable_grant(session, dataset.id, project_id, now) is not None
