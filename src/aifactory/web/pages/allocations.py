"""Portal pages: allocations, each with its burn-down, recent ledger entries and alerts; admins
and finance adjust a balance here (services.allocations checks every step).

The detail reads through services.allocation_detail, which keeps its reads bounded on a busy
allocation: the burn line's entries (those that move it: burndown.BURNING), summed per slice of
time on a long ledger, and the latest entries for the ledger table.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from aifactory.domain import money
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.faces.state import StateDep
from aifactory.services import allocations as service
from aifactory.services.allocation_detail import allocation_detail
from aifactory.services.allocations import AllocationView
from aifactory.services.login import SignedIn
from aifactory.services.principal import Principal
from aifactory.web import burndown
from aifactory.web.burndown import Point
from aifactory.web.pages.projects import form_status
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)


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
        detail = allocation_detail(
            session, signed.principal, allocation=name, burning=burndown.BURNING, now=now
        )
    view = detail.view
    points = burndown.running_balance(detail.burn)
    context = _detail_context(view, points, signed.principal, now=now)
    return render(
        request,
        "allocations/detail.html",
        signed,
        status_code=status,
        title=f"Allocation {view.allocation.name}",
        recent=detail.recent,
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
