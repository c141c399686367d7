"""Usage, invoices and funder reports: the routes that read money and usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import Response as HttpResponse

from aifactory.accounting.reports import report_chart, report_csv, report_json
from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.money_schemas import (
    CHART_MEDIA_TYPES,
    ChartFormat,
    ChartName,
    InvoiceIssue,
    InvoiceOut,
    Month,
    TokenUsageOut,
    UsageOut,
    UsageRecordOut,
    UsageTotalsOut,
)
from aifactory.api.units import MOMENT_FORMAT, Moment, unix
from aifactory.services import audit, invoices, reports, usage
from aifactory.services.usage import MAX_ROWS

router = APIRouter(tags=["money"])

_FROM = Query(alias="from", description=f"start, inclusive: {MOMENT_FORMAT}")
_TO = Query(alias="to", description=f"end, exclusive: {MOMENT_FORMAT}")
From = Annotated[Moment, _FROM]
To = Annotated[Moment, _TO]
MaybeFrom = Annotated[Moment | None, _FROM]
MaybeTo = Annotated[Moment | None, _TO]
CSV = "text/csv; charset=utf-8"


def _seconds(moment: datetime) -> float:
    return unix(moment)


def _file(content: bytes | str, media_type: str, filename: str) -> HttpResponse:
    disposition = {"Content-Disposition": f'inline; filename="{filename}"'}
    return HttpResponse(content, media_type=media_type, headers=disposition)


NO_TOKENS = usage.TokenRow("", "", "", 0, 0, 0, 0, 0)


@router.get("/usage", response_model=UsageOut)
def list_usage(
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    project: str | None = None,
    start: MaybeFrom = None,
    end: MaybeTo = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
) -> UsageOut:
    """Usage records that ended in [from, to), with their cost, and the tokens asked of the
    gateway in the period; totals cover every match."""
    found = usage.usage(
        session,
        user,
        project=project,
        start=None if start is None else _seconds(start),
        end=None if end is None else _seconds(end),
        grid_g_per_kwh=state.grid_g_per_kwh,
        limit=limit,
    )
    return UsageOut(
        records=[UsageRecordOut.of(row) for row in found.rows],
        totals=UsageTotalsOut.of(found.totals),
        tokens=[TokenUsageOut.of(row) for row in found.tokens],
        token_totals=TokenUsageOut.of(found.token_totals or NO_TOKENS),
    )


@router.post(
    "/projects/{project}/invoices",
    status_code=201,
    response_model=InvoiceOut,
    responses={200: {"model": InvoiceOut, "description": "issued before: returned as it was"}},
)
def issue_invoice(
    project: str,
    body: InvoiceIssue,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
    response: HttpResponse,
) -> InvoiceOut:
    """Issue the project's invoice for a month that has ended; issuing again changes nothing."""
    issued = invoices.issue_invoice(
        session, user, project=project, month=body.month, now=now, vat_pct=state.vat_pct
    )
    if not issued.created:
        response.status_code = 200
    return InvoiceOut.of(issued)


@router.get("/projects/{project}/invoices", response_model=list[InvoiceOut])
def list_invoices(project: str, session: ReadSession, user: CurrentUser) -> list[InvoiceOut]:
    return [InvoiceOut.of(v) for v in invoices.list_invoices(session, user, project=project)]


# The .pdf and .csv routes come first: "{month}" alone would also match "2026-01.pdf".
@router.get(
    "/projects/{project}/invoices/{month}.pdf",
    response_class=HttpResponse,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF as issued"}},
)
def invoice_pdf(
    project: str, month: Month, session: ReadSession, user: CurrentUser
) -> HttpResponse:
    invoice = invoices.get_invoice(session, user, project=project, month=month).invoice
    return _file(invoice.pdf, "application/pdf", f"{invoice.number}.pdf")


@router.get(
    "/projects/{project}/invoices/{month}.csv",
    response_class=HttpResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the CSV as issued"}},
)
def invoice_csv(
    project: str, month: Month, session: ReadSession, user: CurrentUser
) -> HttpResponse:
    invoice = invoices.get_invoice(session, user, project=project, month=month).invoice
    return _file(invoice.csv, CSV, f"{invoice.number}.csv")


@router.get("/projects/{project}/invoices/{month}", response_model=InvoiceOut)
def show_invoice(project: str, month: Month, session: ReadSession, user: CurrentUser) -> InvoiceOut:
    return InvoiceOut.of(invoices.get_invoice(session, user, project=project, month=month))


@router.get(
    "/reports/funder",
    response_class=HttpResponse,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def funder_report(
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    now: Now,
    start: From,
    end: To,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> HttpResponse:
    """What the facility delivered in [from, to): GPU-hours by programme and organisation
    kind, utilisation, waits, organisations served, energy and CO2, pool shares. Audited."""
    report = reports.funder_report(
        session,
        user,
        start=_seconds(start),
        end=_seconds(end),
        grid_g_per_kwh=state.grid_g_per_kwh,
    )
    audit.record_read(
        state.db,
        user,
        action="report.export",
        object="report:funder",
        now=now,
        detail={"from": start.isoformat(), "to": end.isoformat(), "format": output},
    )
    if output == "csv":
        return HttpResponse(report_csv(report), media_type=CSV)
    return HttpResponse(report_json(report), media_type="application/json")


@router.get(
    "/reports/funder/charts/{chart}.{fmt}",
    response_class=HttpResponse,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def funder_chart(
    chart: ChartName,
    fmt: ChartFormat,
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    start: From,
    end: To,
) -> HttpResponse:
    report = reports.funder_report(
        session,
        user,
        start=_seconds(start),
        end=_seconds(end),
        grid_g_per_kwh=state.grid_g_per_kwh,
    )
    return _file(report_chart(report, chart, fmt), CHART_MEDIA_TYPES[fmt], f"{chart}.{fmt}")
