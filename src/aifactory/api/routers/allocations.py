"""Allocations: direct grants, adjustments, balances and ledgers."""

from __future__ import annotations

from fastapi import APIRouter

from aifactory.api.accounting_schemas import (
    AdjustBody,
    AllocationCreate,
    AllocationOut,
    LedgerEntryOut,
)
from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.services import allocations as service

router = APIRouter(prefix="/allocations", tags=["allocations"])


@router.get("", response_model=list[AllocationOut])
def list_allocations(
    session: ReadSession, user: CurrentUser, now: Now, project: str | None = None
) -> list[AllocationOut]:
    found = service.list_allocations(session, user, project=project, now=now)
    return [AllocationOut.of(a) for a in found]


@router.post("", status_code=201, response_model=AllocationOut)
def create_allocation(
    body: AllocationCreate, session: WriteSession, user: CurrentUser, now: Now
) -> AllocationOut:
    """Grant GPU-hours without a proposal (e.g. under a contract)."""
    created = service.create_allocation(
        session,
        user,
        project=body.project,
        programme=body.programme,
        gpu_hours=body.gpu_hours,
        valid_from=body.valid_from.timestamp(),
        valid_to=body.valid_to.timestamp(),
        quota_gpus=body.quota_gpus,
        gpu_model=body.gpu_model,
        reason=body.reason,
        now=now,
    )
    return AllocationOut.of(created)


@router.post("/{allocation}/adjust", response_model=AllocationOut)
def adjust_allocation(
    allocation: str, body: AdjustBody, session: WriteSession, user: CurrentUser, now: Now
) -> AllocationOut:
    """Add or take GPU-hours (admins and finance), recorded in the ledger with the reason."""
    adjusted = service.adjust_allocation(
        session, user, allocation=allocation, gpu_hours=body.gpu_hours, reason=body.reason, now=now
    )
    return AllocationOut.of(adjusted)


@router.get("/{allocation}/ledger", response_model=list[LedgerEntryOut])
def allocation_ledger(
    allocation: str, session: ReadSession, user: CurrentUser
) -> list[LedgerEntryOut]:
    entries = service.allocation_ledger(session, user, allocation=allocation)
    return [LedgerEntryOut.of(e) for e in entries]
