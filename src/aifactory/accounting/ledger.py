"""The ledger in the store: append entries once, read balances.

Invariants (domain.ledger): entries are only ever inserted; each has a natural unique key and
`post` refuses a key already there, so replaying an action after a crash changes nothing; an
allocation's balance is the sum of its entries' `gpu_ms`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.ledger import Balance, Entry, EntryKind, balance_of
from aifactory.store.models import LedgerEntry


def post(
    session: Session,
    *,
    allocation_id: int,
    kind: EntryKind,
    gpu_ms: int,
    key: str,
    at: float,
    actor: str,
    reason: str,
    job_id: int | None = None,
    attempt: int | None = None,
    cost_cents: int = 0,
    subsidy_cents: int = 0,
) -> bool:
    """Append one entry; False (and nothing written) if its key was posted before."""
    if session.scalar(select(LedgerEntry.id).where(LedgerEntry.key == key)) is not None:
        return False
    append(
        session,
        allocation_id=allocation_id,
        kind=kind,
        gpu_ms=gpu_ms,
        key=key,
        at=at,
        actor=actor,
        reason=reason,
        job_id=job_id,
        attempt=attempt,
        cost_cents=cost_cents,
        subsidy_cents=subsidy_cents,
    )
    return True


def append(
    session: Session,
    *,
    allocation_id: int,
    kind: EntryKind,
    gpu_ms: int,
    key: str,
    at: float,
    actor: str,
    reason: str,
    job_id: int | None = None,
    attempt: int | None = None,
    cost_cents: int = 0,
    subsidy_cents: int = 0,
) -> None:
    """Append an entry whose key the caller knows is new (the unique key still guards it)."""
    session.add(
        LedgerEntry(
            key=key,
            allocation_id=allocation_id,
            job_id=job_id,
            attempt=attempt,
            kind=kind.value,
            gpu_ms=gpu_ms,
            cost_cents=cost_cents,
            subsidy_cents=subsidy_cents,
            at=at,
            actor=actor,
            reason=reason,
        )
    )


def entry_by_key(session: Session, key: str) -> LedgerEntry | None:
    return session.scalars(select(LedgerEntry).where(LedgerEntry.key == key)).first()


def balances(session: Session, allocation_ids: Iterable[int] | None = None) -> dict[int, Balance]:
    """Each allocation's balance, summed in SQL by kind."""
    stmt = select(LedgerEntry.allocation_id, LedgerEntry.kind, func.sum(LedgerEntry.gpu_ms))
    if allocation_ids is not None:
        stmt = stmt.where(LedgerEntry.allocation_id.in_(list(allocation_ids)))
    rows = session.execute(stmt.group_by(LedgerEntry.allocation_id, LedgerEntry.kind))
    entries: dict[int, list[Entry]] = {}
    for allocation_id, kind, total in rows:
        entries.setdefault(allocation_id, []).append(Entry(EntryKind(kind), int(total), ""))
    return {aid: balance_of(found) for aid, found in entries.items()}


def entries_of(session: Session, allocation_id: int) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.allocation_id == allocation_id)
    return list(session.scalars(stmt.order_by(LedgerEntry.id)))
