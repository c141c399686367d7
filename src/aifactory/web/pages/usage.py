"""Portal pages: usage over a period (totals, per project, a chart) and invoices (list, PDF and
CSV downloads; admins and finance issue a closed month's invoice here).

The totals are services.usage's own (the same figures as GET /api/v1/usage), and so is the
per-project table (services.usage.usage_by_project: the same records, in the same scope,
USAGE_READ, at most `MAX_PROJECTS` rows). The invoice list reads only what it shows (never the
stored PDFs), a page at a time; a download goes through services.invoices, which checks
INVOICE_READ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.faces.state import StateDep
from aifactory.services import invoices, usage
from aifactory.services.login import SignedIn
from aifactory.web import charts
from aifactory.web.nav import may_somewhere
from aifactory.web.pages.projects import form_status
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import SECURITY_HEADERS, render

router = APIRouter(include_in_schema=False)
CHART_BARS = 12
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC seconds, and how the form shows it."""

    start: float
    end: float
    month: str  # "YYYY-MM", or "" when chosen by dates
    first_day: str  # "YYYY-MM-DD"
    last_day: str  # inclusive

    @property
    def label(self) -> str:
        if self.month:
            return datetime.fromtimestamp(self.start, UTC).strftime("%B %Y")
        return f"{self.first_day} to {self.last_day}"


def month_period(month: str) -> Period:
    start, end = invoices.month_bounds(month)
    last = datetime.fromtimestamp(end, UTC).date() - DAY
    return Period(start, end, month, month + "-01", last.isoformat())


def days_period(first: str, last: str) -> Period:
    """From the first day to the last, both whole days (UTC)."""
    begin, until = _day(first, "from"), _day(last, "to")
    if until < begin:
        raise InvalidInput("the last day must not be before the first", field="to")
    start = datetime(begin.year, begin.month, begin.day, tzinfo=UTC).timestamp()
    end = datetime(until.year, until.month, until.day, tzinfo=UTC).timestamp() + DAY.total_seconds()
    return Period(start, end, "", begin.isoformat(), until.isoformat())


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"must be a date, YYYY-MM-DD, not {text!r}", field=field) from None


def this_month(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def last_month(now: float) -> str:
    first = datetime.fromtimestamp(now, UTC).replace(day=1)
    return (first - DAY).strftime("%Y-%m")


@router.get("/usage")
def usage_page(
    request: Request,
    signed: Signed,
    state: StateDep,
    month: str = "",
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
    project: str = "",
) -> Response:
    typed = {"month": month, "from": first, "to": last, "project": project}
    try:
        period = (
            days_period(first, last)
            if first or last
            else month_period(month or this_month(state.clock()))
        )
    except InvalidInput as exc:
        errors = {exc.field or "month": exc.message}
        return _usage(request, signed, state, None, project, typed, errors=errors)
    return _usage(request, signed, state, period, project, typed)


def _usage(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    period: Period | None,
    project: str,
    typed: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
) -> Response:
    principal = signed.principal
    totals, rows = None, []
    with state.db.read() as session:
        if period is not None:
            totals = usage.usage(
                session,
                principal,
                project=project or None,
                start=period.start,
                end=period.end,
                grid_g_per_kwh=state.grid_g_per_kwh,
                limit=0,
            ).totals
            rows = usage.usage_by_project(
                session,
                principal,
                project=project or None,
                start=period.start,
                end=period.end,
                grid_g_per_kwh=state.grid_g_per_kwh,
            )
        choices = usage.project_names(session, principal, Action.USAGE_READ)
    bars = [(r.project, r.gpu_hours) for r in rows[:CHART_BARS]]
    title = f"GPU-hours per project, {period.label}" if period else "GPU-hours per project"
    return render(
        request,
        "usage/usage.html",
        signed,
        status_code=422 if errors else 200,
        title="Usage",
        period=period,
        totals=totals,
        rows=rows,
        capped=len(rows) >= usage.MAX_PROJECTS,
        chart=charts.bar_chart(bars, title=title, unit=" h"),
        choices=choices,
        typed=typed,
        errors=errors or {},
        may_invoices=may_somewhere(principal, Action.INVOICE_READ),
    )


@router.get("/usage/invoices")
def invoice_list(
    request: Request,
    signed: Signed,
    state: StateDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    issued: str = "",
    again: str = "",
) -> Response:
    return _invoices(request, signed, state, page=page, issued=issued, again=again)


@router.post("/usage/invoices")
def issue_invoice(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    project: Annotated[str, Form()] = "",
    month: Annotated[str, Form()] = "",
) -> Response:
    try:
        with state.db.session() as session:
            done = invoices.issue_invoice(
                session,
                signed.principal,
                project=project,
                month=month.strip(),
                now=state.clock(),
                vat_pct=state.vat_pct,
            )
            number, created = done.invoice.number, done.created
    except AifactoryError as exc:
        status = form_status(exc, page_fields=())
        errors = {exc.field or "month": exc.message}
        typed = {"project": project, "month": month}
        return _invoices(request, signed, state, errors=errors, typed=typed, status=status)
    again = "" if created else "&again=1"
    return RedirectResponse(f"/usage/invoices?issued={number}{again}", status_code=303)


def _invoices(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    *,
    page: int = 1,
    status: int = 200,
    **context: Any,
) -> Response:
    principal = signed.principal
    if not may_somewhere(principal, Action.INVOICE_READ):
        principal.authorize(Action.INVOICE_READ)  # refused, with the roles it needs
    may_issue = principal.may(Action.INVOICE_ISSUE)
    with state.db.read() as session:
        found = invoices.invoice_page(session, principal, page=page)
        choices = usage.project_names(session, principal, Action.INVOICE_ISSUE) if may_issue else []
    context.setdefault("errors", {})
    context.setdefault("typed", {"month": last_month(state.clock())})
    return render(
        request,
        "usage/invoices.html",
        signed,
        status_code=status,
        title="Invoices",
        invoices=found[: invoices.PAGE],
        page=page,
        more=len(found) > invoices.PAGE,
        may_issue=may_issue,
        choices=choices,
        **context,
    )


@router.get("/usage/invoices/{project}/{month}.pdf")
def invoice_pdf(project: str, month: str, signed: Signed, state: StateDep) -> Response:
    with state.db.read() as session:
        invoice = invoices.get_invoice(session, signed.principal, project=project, month=month)
        return _download(invoice.invoice.pdf, "application/pdf", f"{invoice.invoice.number}.pdf")


@router.get("/usage/invoices/{project}/{month}.csv")
def invoice_csv(project: str, month: str, signed: Signed, state: StateDep) -> Response:
    with state.db.read() as session:
        invoice = invoices.get_invoice(session, signed.principal, project=project, month=month)
        csv = invoice.invoice.csv
        return _download(csv, "text/csv; charset=utf-8", f"{invoice.invoice.number}.csv")


def _download(content: bytes | str, media_type: str, filename: str) -> Response:
    """The document as issued, saved under its invoice number (an attachment, not shown)."""
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content, media_type=media_type, headers=headers)
