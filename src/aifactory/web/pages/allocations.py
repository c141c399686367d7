"""Portal pages: allocations, each with its burn-down, recent ledger entries and alerts; admins
and finance adjust a balance here (services.allocations checks every step).

Reads stay bounded on a busy allocation: the burn line comes from the ledger's balance-moving
entries when there are at most `MAX_EXACT` of them, else from their sums over `SAMPLES` slices
of time (one GROUP BY); the ledger table shows the latest `RECENT` entries. Both queries run only
after the service has shown the allocation to the signed-in user.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from aifactory.api.deps import StateDep
from aifactory.domain import money
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.services import allocations as service
from aifactory.services.allocations import AllocationView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.store.models import Allocation, LedgerEntry
from aifactory.web import burndown
from aifactory.web.burndown import Point
from aifactory.web.pages.projects import form_status
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_EXACT = 2000
SAMPLES = 120
RECENT = 25
BURNING = [kind.value for kind in burndown.BURNING]


@router.get("/allocations")
def allocation_list(request: Request, signed: Signed, state: StateDep) -> Response:
    with state.db.read() as session:
        found = service.list_allocations(session, signed.principal, now=state.clock())
    return render(request, "allocations/list.html", signed, title="Allocations", allocations=found)


@router.get("/allocations/{name}")
def allocation_page(
    request: Request, name: str, signed: Signed, state: StateDep, adjusted: str = ""
) -> Response:
    return _detail(request, signed, state, name, adjusted=adjusted)


@router.post("/allocations/{name}/adjust")
def adjust(
    request: Request,
    name: str,
    signed: SignedPost,
    state: StateDep,
    gpu_hours: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        hours = _hours(gpu_hours)
        with state.db.session() as session:
            service.adjust_allocation(
                session,
                signed.principal,
                allocation=name,
                gpu_hours=hours,
                reason=reason,
                now=state.clock(),
            )
    except AifactoryError as exc:
        status = form_status(exc, page_fields={"allocation"})
        errors = {exc.field or "gpu_hours": exc.message}
        typed = {"gpu_hours": gpu_hours, "reason": reason}
        return _detail(request, signed, state, name, errors=errors, typed=typed, status=status)
    return RedirectResponse(f"/allocations/{quote(name)}?adjusted=1", status_code=303)


def _hours(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidInput(
            "must be a number of GPU-hours, e.g. 50 or -12.5", field="gpu_hours"
        ) from None


def _detail(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    name: str,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    adjusted: str = "",
    status: int = 200,
) -> Response:
    now = state.clock()
    with state.db.read() as session:
        view = service.get_allocation(session, signed.principal, allocation=name, now=now)
        points = balance_points(session, view.allocation)
        recent = recent_entries(session, view.allocation.id)
    context = _detail_context(view, points, signed.principal, now=now)
    return render(
        request,
        "allocations/detail.html",
        signed,
        status_code=status,
        title=f"Allocation {view.allocation.name}",
        recent=recent,
        errors=errors or {},
        typed=typed or {},
        adjusted=adjusted,
        **context,
    )


def _detail_context(
    view: AllocationView, points: list[Point], principal: Principal, *, now: float
) -> dict[str, Any]:
    allocation, balance = view.allocation, view.balance
    chart = burndown.burndown_chart(
        points,
        awarded_h=money.gpu_hours(balance.awarded),
        valid_from=allocation.valid_from,
        valid_to=allocation.valid_to,
        now=now,
        title=f"{allocation.name}: GPU-hours left over time",
    )
    return {
        "view": view,
        "chart": chart,
        "granted_h": money.gpu_hours(balance.awarded + balance.adjusted),
        "may_adjust": principal.may(Action.ALLOCATION_ADJUST, allocation.project_id),
    }


def balance_points(
    session: Session, allocation: Allocation, *, max_exact: int = MAX_EXACT
) -> list[Point]:
    """The burn line's points: after every balance-moving entry, or on a long ledger after the
    last entry of each of about `SAMPLES` slices of the allocation's window (exact there too)."""
    moving = (LedgerEntry.allocation_id == allocation.id, LedgerEntry.kind.in_(BURNING))
    first = select(LedgerEntry.at, LedgerEntry.id, LedgerEntry.gpu_ms).where(*moving)
    rows = session.execute(first.order_by(LedgerEntry.id).limit(max_exact + 1)).all()
    if len(rows) <= max_exact:
        return burndown.running_balance((at, gpu_ms) for at, _, gpu_ms in sorted(rows))
    # Any slicing that keeps time order will do (SQLite truncates the cast, PostgreSQL rounds
    # it, entries before the window go below 0): each slice's sum lands at its last entry.
    width = max(allocation.valid_to - allocation.valid_from, 1.0) / SAMPLES
    slice_of = cast((LedgerEntry.at - allocation.valid_from) / width, Integer)
    ends = func.max(LedgerEntry.at)
    sliced = select(ends, func.sum(LedgerEntry.gpu_ms)).where(*moving).group_by(slice_of)
    return burndown.running_balance(
        (at, int(gpu_ms)) for at, gpu_ms in session.execute(sliced.order_by(ends))
    )


def recent_entries(session: Session, allocation_id: int) -> list[LedgerEntry]:
    """The latest entries, newest first (the full ledger: GET /api/v1/allocations/…/ledger).
    By id: the ledger is only appended to, and the allocation's index then serves the order."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.allocation_id == allocation_id)
        .order_by(LedgerEntry.id.desc())
        .limit(RECENT)
    )
    return list(session.scalars(stmt))
