"""One allocation in detail: its view (services.allocations), the ledger entries its burn-down
is drawn from, and its latest entries.

Reads stay bounded on a busy allocation: the burn line comes from the ledger's entries of the
kinds that move it (the caller's `burning`, web.burndown.BURNING) when there are at most
`MAX_EXACT` of them, else from their sums over `SAMPLES` slices of time (one GROUP BY); the
latest `RECENT` entries come newest first. Both queries run only after services.allocations has
shown the allocation to the caller (ALLOCATION_READ: else 404).

Words (web.burndown): an *entry* of the burn line is `(at, gpu_ms)`, a time and a signed effect
on the balance.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from aifactory.domain.ledger import EntryKind
from aifactory.services.allocations import AllocationView, get_allocation
from aifactory.services.principal import Principal
from aifactory.services.records_of import AllocationRecord
from aifactory.store.models import LedgerEntry

MAX_EXACT = 2000
SAMPLES = 120
RECENT = 25


@dataclass(frozen=True, slots=True)
class LedgerEntryView:
    id: int
    at: float
    kind: str  # domain.ledger.EntryKind's value
    gpu_ms: int  # the signed effect on the balance
    job_id: int | None
    attempt: int | None
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class AllocationDetail:
    view: AllocationView
    burn: list[tuple[float, int]]  # the burn line's entries, oldest first
    recent: list[LedgerEntryView]  # the latest `RECENT` entries, newest first


def allocation_detail(
    session: Session,
    principal: Principal,
    *,
    allocation: str,
    burning: Collection[EntryKind],
    now: float,
) -> AllocationDetail:
    """The allocation named `allocation` (404 unless the principal may read it), with its burn
    line's entries (of the kinds in `burning`) and its latest entries."""
    view = get_allocation(session, principal, allocation=allocation, now=now)
    return AllocationDetail(
        view=view,
        burn=burn_entries(session, view.allocation, burning),
        recent=recent_entries(session, view.allocation.id),
    )


def burn_entries(
    session: Session,
    allocation: AllocationRecord,
    burning: Collection[EntryKind],
    *,
    max_exact: int = MAX_EXACT,
) -> list[tuple[float, int]]:
    """Every entry of the kinds in `burning`, oldest first; or on a long ledger, the sum of
    each of about `SAMPLES` slices of the allocation's window, at the slice's last entry (so
    the balance after each is exact there too)."""
    kinds = [kind.value for kind in burning]
    moving = (LedgerEntry.allocation_id == allocation.id, LedgerEntry.kind.in_(kinds))
    first = select(LedgerEntry.at, LedgerEntry.id, LedgerEntry.gpu_ms).where(*moving)
    rows = session.execute(first.order_by(LedgerEntry.id).limit(max_exact + 1)).all()
    if len(rows) <= max_exact:
        return [(at, gpu_ms) for at, _, gpu_ms in sorted(rows)]
    # Any slicing that keeps time order will do (SQLite truncates the cast, PostgreSQL rounds
    # it, entries before the window go below 0): each slice's sum lands at its last entry.
    width = max(allocation.valid_to - allocation.valid_from, 1.0) / SAMPLES
    slice_of = cast((LedgerEntry.at - allocation.valid_from) / width, Integer)
    ends = func.max(LedgerEntry.at)
    sliced = select(ends, func.sum(LedgerEntry.gpu_ms)).where(*moving).group_by(slice_of)
    return [(at, int(gpu_ms)) for at, gpu_ms in session.execute(sliced.order_by(ends))]


def recent_entries(session: Session, allocation_id: int) -> list[LedgerEntryView]:
    """The latest entries, newest first (the full ledger: services.allocations.allocation_ledger).
    By id: the ledger is only appended to, and the allocation's index then serves the order."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.allocation_id == allocation_id)
        .order_by(LedgerEntry.id.desc())
        .limit(RECENT)
    )
    return [_entry_view(entry) for entry in session.scalars(stmt)]


def _entry_view(entry: LedgerEntry) -> LedgerEntryView:
    return LedgerEntryView(
        id=entry.id,
        at=entry.at,
        kind=entry.kind,
        gpu_ms=entry.gpu_ms,
        job_id=entry.job_id,
        attempt=entry.attempt,
        actor=entry.actor,
        reason=entry.reason,
    )
