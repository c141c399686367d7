"""Allocations: GPU-hours a project may use under a programme between two dates.

Admins grant them directly (a contract, a government agreement) or by awarding a proposal
(services.proposals); both go through `open_allocation`, the one place an allocation is made,
which also posts its AWARD ledger entry. Admins and finance adjust a balance by a signed
amount; every change is a new ledger entry (accounting.ledger), never an edit.

Invariants: an allocation ends after it starts; a project's organisation is eligible for the
programme; a project holds at most one allocation per programme at any moment (windows of the
same project and programme never overlap); an adjustment never takes a balance below zero.

Who sees what (ALLOCATION_READ): admins, finance and operators see every allocation and its
ledger; a project's members see their project's; anyone else is told it does not exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.accounting import ledger
from aifactory.accounting.budget import raise_alerts
from aifactory.domain.ledger import Balance, EntryKind
from aifactory.domain.money import MS_PER_S, gpu_seconds
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import Window, eligible
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.programmes import (
    MAX_GPU_HOURS,
    hours_text,
    no_nul,
    programme_by_name,
    time_text,
)
from aifactory.services.records_of import AlertRecord, AllocationRecord, copy_of
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import (
    Allocation,
    AllocationAlert,
    LedgerEntry,
    Organisation,
    Programme,
    Project,
)
from aifactory.store.names import names_of

MAX_QUOTA_GPUS = 100_000
NAME_LIMIT = 64  # allocations.name is String(64)
NO_ENTRIES = Balance(awarded_ms=0, adjusted_ms=0, settled_ms=0, reserved_ms=0)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an allocation gives: GPU-hours, when, a guaranteed quota, for which GPU model."""

    gpu_hours: float
    valid_from: float
    valid_to: float
    quota_gpus: int = 0
    gpu_model: str | None = None  # None: any model

    @property
    def window(self) -> Window:
        return Window(self.valid_from, self.valid_to)


@dataclass(frozen=True, slots=True)
class AllocationView:
    allocation: AllocationRecord
    project: str
    programme: str
    balance: Balance
    active: bool  # valid now
    alerts: tuple[AlertRecord, ...]


def create_allocation(
    session: Session,
    principal: Principal,
    *,
    project: str,
    programme: str,
    gpu_hours: float,
    valid_from: float,
    valid_to: float,
    quota_gpus: int = 0,
    gpu_model: str | None = None,
    reason: str,
    now: float,
) -> AllocationView:
    """A direct grant, without a proposal (e.g. a commercial or government contract)."""
    found = project_by_name(session, principal, project, action=Action.ALLOCATION_CREATE)
    scheme = programme_by_name(session, programme)
    if not reason.strip():
        raise InvalidInput("say why this allocation is granted", field="reason")
    allocation = open_allocation(
        session,
        project=found,
        programme=scheme,
        grant=Grant(gpu_hours, valid_from, valid_to, quota_gpus, gpu_model),
        name=f"{found.name}-{scheme.name}",
        proposal_id=None,
        actor=principal.name,
        reason=reason.strip(),
        now=now,
        source=principal.source,
    )
    return view_of(session, allocation, now=now)


def open_allocation(
    session: Session,
    *,
    project: Project,
    programme: Programme,
    grant: Grant,
    name: str,
    proposal_id: int | None,
    actor: str,
    reason: str,
    now: float,
    source: str | None = None,
) -> Allocation:
    """Check the grant, make the allocation (named `name`, or `name-2`, `name-3`… when taken),
    post its AWARD entry and audit it (from `source`, the client address, if any). Every check
    comes before the first write."""
    check_grant(grant)
    check_eligible(session, project, programme)
    _check_no_overlap(session, project, programme, grant.window)
    allocation = Allocation(
        name=_free_name(session, name),
        project_id=project.id,
        programme_id=programme.id,
        proposal_id=proposal_id,
        award_gpu_s=gpu_seconds(grant.gpu_hours),
        gpu_model=grant.gpu_model,
        quota_gpus=grant.quota_gpus,
        valid_from=grant.valid_from,
        valid_to=grant.valid_to,
        created_by=actor,
        created_at=now,
    )
    session.add(allocation)
    session.flush()
    ledger.post(
        session,
        allocation_id=allocation.id,
        kind=EntryKind.AWARD,
        gpu_ms=allocation.award_gpu_s * MS_PER_S,
        key=f"award:{allocation.id}",
        at=now,
        actor=actor,
        reason=reason,
    )
    audit.record(
        session,
        actor=actor,
        action="allocation.create",
        object=f"allocation:{allocation.name}",
        at=now,
        source=source,
        project_id=project.id,
        detail={"programme": programme.name, "gpu_hours": grant.gpu_hours, "reason": reason},
    )
    return allocation


def check_grant(grant: Grant) -> None:
    hours = grant.gpu_hours
    if not (math.isfinite(hours) and 0 < hours <= MAX_GPU_HOURS and gpu_seconds(hours) > 0):
        raise InvalidInput(
            f"must be above 0 and at most {MAX_GPU_HOURS} GPU-hours", field="gpu_hours"
        )
    problem = grant.window.problem("the allocation")
    if problem is not None:
        raise InvalidInput(f"{problem}: valid_to must be after valid_from", field="valid_to")
    if not 0 <= grant.quota_gpus <= MAX_QUOTA_GPUS:
        raise InvalidInput(f"must be 0–{MAX_QUOTA_GPUS} GPUs", field="quota_gpus")
    model = grant.gpu_model
    if model is not None and not (model.strip() and len(model) <= NAME_LIMIT):
        raise InvalidInput("must be 1–64 characters, or left out for any model", field="gpu_model")


def check_eligible(session: Session, project: Project, programme: Programme) -> None:
    org = session.get(Organisation, project.organisation_id)
    assert org is not None  # a foreign key
    if not eligible(programme.eligible_kinds, org.kind):
        kinds = ", ".join(programme.eligible_kinds)
        raise InvalidInput(
            f"project {project.name} belongs to {org.name}, a {org.kind} organisation; "
            f"programme {programme.name} is open to: {kinds}",
            field="project",
        )


def _check_no_overlap(
    session: Session, project: Project, programme: Programme, window: Window
) -> None:
    # Lock the project row (PostgreSQL; SQLite writers are serial): two grants at once for
    # the same project cannot both pass this check.
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    held = session.scalars(
        select(Allocation)
        .where(Allocation.project_id == project.id, Allocation.programme_id == programme.id)
        .order_by(Allocation.id)
    )
    for other in held:
        if Window(other.valid_from, other.valid_to).overlaps(window):
            raise InvalidInput(
                f"project {project.name} already holds allocation {other.name} under "
                f"programme {programme.name} for part of that time "
                f"({time_text(other.valid_from)} to {time_text(other.valid_to)}); one at a time",
                field="valid_from",
            )


def _free_name(session: Session, base: str) -> str:
    stem = base[: NAME_LIMIT - 8]  # every candidate below starts with this
    taken = set(
        session.scalars(
            select(Allocation.name).where(Allocation.name.startswith(stem, autoescape=True))
        )
    )
    n = 1
    while (name := _numbered(base, n)) in taken:
        n += 1
    return name


def _numbered(base: str, n: int) -> str:
    suffix = "" if n == 1 else f"-{n}"
    return base[: NAME_LIMIT - len(suffix)] + suffix


def adjust_allocation(
    session: Session,
    principal: Principal,
    *,
    allocation: str,
    gpu_hours: float,
    reason: str,
    now: float,
) -> AllocationView:
    """Add (or with a negative amount take) GPU-hours, as an ADJUST entry with its reason."""
    found = _by_name(session, principal, allocation, action=Action.ALLOCATION_ADJUST, lock=True)
    gpu_s = _adjustment(gpu_hours, reason)
    left_ms = ledger.balances(session, [found.id]).get(found.id, NO_ENTRIES).left_ms
    if left_ms + gpu_s * MS_PER_S < 0:
        raise InvalidInput(
            f"allocation {found.name} has {hours_text(left_ms / MS_PER_S)} GPU-h left; "
            f"taking {hours_text(-gpu_s)} would make it negative",
            field="gpu_hours",
        )
    n = 1 + _count_entries(session, found.id, EntryKind.ADJUST)
    posted = ledger.post(
        session,
        allocation_id=found.id,
        kind=EntryKind.ADJUST,
        gpu_ms=gpu_s * MS_PER_S,
        key=f"adjust:{found.id}:{n}",
        at=now,
        actor=principal.name,
        reason=reason.strip(),
    )
    if not posted:
        raise Conflict("another adjustment was recorded at the same time; try again")
    raise_alerts(session, found.id, now=now)
    audit.record(
        session,
        actor=principal.name,
        action="allocation.adjust",
        object=f"allocation:{found.name}",
        at=now,
        source=principal.source,
        project_id=found.project_id,
        detail={"gpu_hours": gpu_hours, "reason": reason.strip()},
    )
    return view_of(session, found, now=now)


def _adjustment(hours: float, reason: str) -> int:
    if not (math.isfinite(hours) and abs(hours) <= MAX_GPU_HOURS and gpu_seconds(hours) != 0):
        raise InvalidInput(
            f"must be a non-zero number of GPU-hours, at most {MAX_GPU_HOURS} either way",
            field="gpu_hours",
        )
    if not reason.strip():
        raise InvalidInput("say why the balance changes", field="reason")
    return gpu_seconds(hours)


def _count_entries(session: Session, allocation_id: int, kind: EntryKind) -> int:
    stmt = select(func.count(LedgerEntry.id)).where(
        LedgerEntry.allocation_id == allocation_id, LedgerEntry.kind == kind.value
    )
    return int(session.scalar(stmt) or 0)


def list_allocations(
    session: Session, principal: Principal, *, project: str | None = None, now: float
) -> list[AllocationView]:
    stmt = select(Allocation).order_by(Allocation.id)
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.ALLOCATION_READ)
        stmt = stmt.where(Allocation.project_id == found.id)
    elif (projects := principal.projects_for(Action.ALLOCATION_READ)) is not None:
        stmt = stmt.where(Allocation.project_id.in_(projects))
    return views_of(session, list(session.scalars(stmt)), now=now)


def get_allocation(
    session: Session, principal: Principal, *, allocation: str, now: float
) -> AllocationView:
    return view_of(session, _by_name(session, principal, allocation), now=now)


def allocation_ledger(
    session: Session, principal: Principal, *, allocation: str
) -> list[LedgerEntry]:
    """The allocation's entries, oldest first."""
    return ledger.entries_of(session, _by_name(session, principal, allocation).id)


def _by_name(
    session: Session,
    principal: Principal,
    name: str,
    *,
    action: Action = Action.ALLOCATION_READ,
    lock: bool = False,
) -> Allocation:
    """The allocation named `name` if the principal may do `action` to it; NotFound if they
    see neither it nor its project."""
    principal.refuse_early(action)
    stmt = select(Allocation).where(Allocation.name == no_nul(name))
    found = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None or not (
        principal.may(Action.ALLOCATION_READ, found.project_id) or principal.sees(found.project_id)
    ):
        raise NotFound(f"no allocation named {name!r} that you can see", field="allocation")
    principal.authorize(action, found.project_id, seen=True)
    return found


def view_of(session: Session, allocation: Allocation, *, now: float) -> AllocationView:
    return views_of(session, [allocation], now=now)[0]


def views_of(
    session: Session, allocations: list[Allocation], *, now: float
) -> list[AllocationView]:
    """Each allocation with its names, balance and alerts, in three queries for all of them."""
    ids = [a.id for a in allocations]
    balances = ledger.balances(session, ids)
    projects = names_of(session, Project, {a.project_id for a in allocations})
    programmes = names_of(session, Programme, {a.programme_id for a in allocations})
    alerts: dict[int, list[AlertRecord]] = {}
    stmt = select(AllocationAlert).where(AllocationAlert.allocation_id.in_(ids))
    for alert in session.scalars(stmt.order_by(AllocationAlert.threshold)):
        alerts.setdefault(alert.allocation_id, []).append(copy_of(AlertRecord, alert))
    return [
        AllocationView(
            allocation=copy_of(AllocationRecord, a),
            project=projects[a.project_id],
            programme=programmes[a.programme_id],
            balance=balances.get(a.id, NO_ENTRIES),
            active=Window(a.valid_from, a.valid_to).contains(now),
            alerts=tuple(alerts.get(a.id, ())),
        )
        for a in allocations
    ]
