"""Portal pages: allocations, each with its burn-down, recent ledger entries and alerts; admins
and finance adjust a balance here (services.allocations checks every step).

Reads stay bounded on a busy allocation: the burn line comes from the ledger's balance-moving
entries when there are at most `MAX_EXACT` of them, else from the balance read at `SAMPLES`
moments in one query; the ledger table shows the latest `RECENT` entries. Both queries run only
after the service has shown the allocation to the signed-in user.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from aifactory.api.deps import StateDep
from aifactory.domain import money
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.services import allocations as service
from aifactory.services.allocations import AllocationView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.store.models import LedgerEntry
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
        points = balance_points(session, view.allocation.id)
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
    session: Session, allocation_id: int, *, max_exact: int = MAX_EXACT
) -> list[Point]:
    """The burn line's points: at every balance-moving entry, or sampled on a long ledger."""
    moving = (LedgerEntry.allocation_id == allocation_id, LedgerEntry.kind.in_(BURNING))
    count, first, last = session.execute(
        select(func.count(), func.min(LedgerEntry.at), func.max(LedgerEntry.at)).where(*moving)
    ).one()
    if count <= max_exact:
        rows = session.execute(
            select(LedgerEntry.at, LedgerEntry.gpu_s)
            .where(*moving)
            .order_by(LedgerEntry.at, LedgerEntry.id)
        )
        return burndown.running_balance((at, gpu_s) for at, gpu_s in rows)
    times = burndown.sample_times(first, last, SAMPLES)
    sums = [
        func.coalesce(func.sum(case((LedgerEntry.at <= t, LedgerEntry.gpu_s), else_=0)), 0)
        for t in times
    ]
    left = session.execute(select(*sums).where(*moving)).one()
    return [(t, money.gpu_hours(int(s))) for t, s in zip(times, left, strict=True)]


def recent_entries(session: Session, allocation_id: int) -> list[LedgerEntry]:
    """The latest entries, newest first (the full ledger: GET /api/v1/allocations/…/ledger)."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.allocation_id == allocation_id)
        .order_by(LedgerEntry.at.desc(), LedgerEntry.id.desc())
        .limit(RECENT)
    )
    return list(session.scalars(stmt))
