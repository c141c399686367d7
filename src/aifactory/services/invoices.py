"""Issued invoices: one per project and closed month, numbered, stored as issued, never redone.

Invariants: an invoice is issued only for a month that has ended (UTC); issuing again returns
the stored invoice unchanged, lines, totals, CSV and PDF bytes included. Numbers run
"AIF-<year>-<000001…>" per year of issue with no gaps and are never reused; the unique
constraints on (project, month) and on the number turn a concurrent double issue into a retry,
never into two invoices. Only settled usage paid from an allocation is billed: a usage record
without one (metered only) is free. Tokens through the gateway are billed by when they were
asked (each request is written within a fraction of a second of it), at their exact price.

Who may do what (INVOICE_ISSUE, INVOICE_READ): facility admins and finance issue; they and the
project's members (owner, member, viewer) read; anyone else who sees the project is refused, and
whoever does not is told it does not exist.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.accounting.invoices import build_invoice, invoice_csv, invoice_pdf
from aifactory.domain.permissions import Action
from aifactory.domain.statements import ChargedUsage, Invoice, TokenCharge
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.records_of import InvoiceRecord, copy_of
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import (
    Allocation,
    Endpoint,
    InferenceUsage,
    IssuedInvoice,
    Organisation,
    Programme,
    Project,
    UsageRecord,
)

NUMBER_PREFIX = "AIF"
# "YYYY-MM", 1970-01 to 9998-12 (the month after it must be a datetime too).
MONTH = re.compile(
    r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"  # 1970 to 9998
    r"-(0[1-9]|1[0-2])"
)
MONTH_PATTERN = f"^{MONTH.pattern}$"  # the same, in the API's schema
NUMBER_TRIES = 5
NUMBER_DIGITS = 6
PAGE = 50


@dataclass(frozen=True, slots=True)
class InvoiceView:
    project: str
    invoice: InvoiceRecord


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """What a list of invoices shows of one: no lines, no stored documents."""

    project: str
    project_id: int
    number: str
    month: str
    issued_at: float
    issued_by: str
    net_cents: int
    vat_cents: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class Issued(InvoiceView):
    created: bool  # False: it had been issued before, and is returned as it was


def issue_invoice(
    session: Session,
    principal: Principal,
    *,
    project: str,
    month: str,
    now: float,
    vat_pct: int,
) -> Issued:
    """The project's invoice for `month` ("YYYY-MM"): issued now, or as issued before."""
    start, end = month_bounds(month)
    found = project_by_name(session, principal, project, action=Action.INVOICE_ISSUE)
    existing = _stored(session, found.id, month)
    if existing is not None:
        return Issued(found.name, copy_of(InvoiceRecord, existing), created=False)
    if now < end:
        opens = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d")
        raise InvalidInput(
            f"month {month} is not closed yet; invoices are issued from {opens}", field="month"
        )
    charges = charges_of(session, found.id, start, end)
    tokens = token_charges_of(session, found.id, start, end)
    issued = _insert_numbered(
        session, principal, found, month, charges, tokens, now=now, vat_pct=vat_pct
    )
    if issued.created:
        audit.record(
            session,
            actor=principal.name,
            action="invoice.issue",
            object=f"invoice:{issued.invoice.number}",
            at=now,
            source=principal.source,
            project_id=found.id,
            detail={"month": month, "total_cents": issued.invoice.total_cents},
        )
    return issued


def _insert_numbered(
    session: Session,
    principal: Principal,
    project: Project,
    month: str,
    charges: list[ChargedUsage],
    tokens: list[TokenCharge],
    *,
    now: float,
    vat_pct: int,
) -> Issued:
    """Store the invoice under the next number; if a concurrent issue took that number, count
    again, and if it issued this very invoice, return theirs."""
    for _ in range(NUMBER_TRIES):
        row = _row(session, principal, project, month, charges, tokens, now=now, vat_pct=vat_pct)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = _stored(session, project.id, month)
            if existing is not None:
                return Issued(project.name, copy_of(InvoiceRecord, existing), created=False)
            continue
        return Issued(project.name, copy_of(InvoiceRecord, row), created=True)
    raise Conflict("invoice numbers are being issued concurrently; try again", field="month")


def _row(
    session: Session,
    principal: Principal,
    project: Project,
    month: str,
    charges: list[ChargedUsage],
    tokens: list[TokenCharge],
    *,
    now: float,
    vat_pct: int,
) -> IssuedInvoice:
    organisation = session.get(Organisation, project.organisation_id)
    assert organisation is not None
    invoice = build_invoice(
        number=_next_number(session, now),
        project=project.name,
        organisation=organisation.name,
        month=month,
        issued_at=now,
        charges=charges,
        vat_pct=vat_pct,
        tokens=tokens,
    )
    return _stored_form(invoice, project.id, principal.name)


def _stored_form(invoice: Invoice, project_id: int, issued_by: str) -> IssuedInvoice:
    return IssuedInvoice(
        number=invoice.number,
        project_id=project_id,
        month=invoice.month,
        issued_at=invoice.issued_at,
        issued_by=issued_by,
        currency=invoice.currency,
        vat_pct=invoice.vat_pct,
        gross_cents=invoice.gross_cents,
        subsidy_cents=invoice.subsidy_cents,
        net_cents=invoice.net_cents,
        vat_cents=invoice.vat_cents,
        total_cents=invoice.total_cents,
        lines=[asdict(line) for line in invoice.lines],
        csv=invoice_csv(invoice),
        pdf=invoice_pdf(invoice),
    )


def _next_number(session: Session, now: float) -> str:
    """The number after the last one issued in the year of `now` (UTC): with no gaps, one
    more than the invoices issued that year. Fixed-width, so the greatest text is the last."""
    prefix = f"{NUMBER_PREFIX}-{datetime.fromtimestamp(now, UTC).year}-"
    last = session.scalar(
        select(func.max(IssuedInvoice.number)).where(IssuedInvoice.number.startswith(prefix))
    )
    issued = int(last.removeprefix(prefix)) if last else 0
    return f"{prefix}{issued + 1:0{NUMBER_DIGITS}d}"


def charges_of(session: Session, project_id: int, start: float, end: float) -> list[ChargedUsage]:
    """The project's usage settled in [start, end) and paid from an allocation, each at the
    terms it settled under."""
    stmt = (
        select(UsageRecord, Programme.name)
        .join(Allocation, Allocation.id == UsageRecord.allocation_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .where(
            UsageRecord.project_id == project_id,
            UsageRecord.booked_at >= start,
            UsageRecord.booked_at < end,
        )
        .order_by(UsageRecord.booked_at, UsageRecord.id)
    )
    return [
        ChargedUsage(
            job_id=record.job_id,
            attempt=record.attempt,
            programme=programme,
            gpu_model=record.gpu_model,
            gpu_ms=record.gpu_ms,
            cpu_ms=record.cpu_ms,
            gpu_price=Decimal(record.gpu_price),
            cpu_price=Decimal(record.cpu_price),
            subsidy_pct=record.subsidy_pct,
            ended_at=record.ended_at,
        )
        for record, programme in session.execute(stmt)
    ]


def token_charges_of(
    session: Session, project_id: int, start: float, end: float
) -> list[TokenCharge]:
    """The project's requests through the gateway in [start, end) that an allocation paid for,
    summed by programme, subsidy rate and model (exact nano-cents)."""
    stmt = (
        select(
            Programme.name,
            InferenceUsage.subsidy_pct,
            Endpoint.name,
            func.sum(InferenceUsage.prompt_tokens),
            func.sum(InferenceUsage.completion_tokens),
            func.sum(InferenceUsage.cost_nanocents),
        )
        .join(Allocation, Allocation.id == InferenceUsage.allocation_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .join(Endpoint, Endpoint.id == InferenceUsage.endpoint_id)
        .where(
            InferenceUsage.project_id == project_id,
            InferenceUsage.at >= start,
            InferenceUsage.at < end,
        )
        .group_by(Programme.name, InferenceUsage.subsidy_pct, Endpoint.name)
    )
    return [
        TokenCharge(programme, pct, model, int(prompt), int(completion), int(nanocents))
        for programme, pct, model, prompt, completion, nanocents in session.execute(stmt)
    ]


def get_invoice(session: Session, principal: Principal, *, project: str, month: str) -> InvoiceView:
    month_bounds(month)
    found = project_by_name(session, principal, project, action=Action.INVOICE_READ)
    invoice = _stored(session, found.id, month)
    if invoice is None:
        raise NotFound(f"no invoice for {found.name} in {month} has been issued", field="month")
    return InvoiceView(found.name, copy_of(InvoiceRecord, invoice))


def list_invoices(
    session: Session, principal: Principal, *, project: str | None = None
) -> list[InvoiceView]:
    """The invoices the principal may read, by project name, then month."""
    stmt = select(IssuedInvoice, Project.name).join(Project, Project.id == IssuedInvoice.project_id)
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.INVOICE_READ)
        stmt = stmt.where(Project.id == found.id)
    elif (projects := principal.projects_for(Action.INVOICE_READ)) is not None:
        stmt = stmt.where(Project.id.in_(projects))
    rows = session.execute(stmt.order_by(Project.name, IssuedInvoice.month))
    return [InvoiceView(name, copy_of(InvoiceRecord, invoice)) for invoice, name in rows]


def invoice_page(
    session: Session, principal: Principal, *, page: int, per_page: int = PAGE
) -> list[InvoiceSummary]:
    """Page `page` (from 1) of the invoices the principal may read, newest month first, then by
    project, and one more if there is one (then there is a next page)."""
    stmt = (
        select(
            Project.name,
            IssuedInvoice.project_id,
            IssuedInvoice.number,
            IssuedInvoice.month,
            IssuedInvoice.issued_at,
            IssuedInvoice.issued_by,
            IssuedInvoice.net_cents,
            IssuedInvoice.vat_cents,
            IssuedInvoice.total_cents,
        )
        .join(Project, Project.id == IssuedInvoice.project_id)
        .order_by(IssuedInvoice.month.desc(), Project.name)
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    if (scope := principal.projects_for(Action.INVOICE_READ)) is not None:
        stmt = stmt.where(IssuedInvoice.project_id.in_(scope))
    return [InvoiceSummary(*row) for row in session.execute(stmt)]


def _stored(session: Session, project_id: int, month: str) -> IssuedInvoice | None:
    stmt = select(IssuedInvoice).where(
        IssuedInvoice.project_id == project_id, IssuedInvoice.month == month
    )
    return session.scalars(stmt).first()


def month_bounds(month: str) -> tuple[float, float]:
    """[first instant, first instant of the next month) of "YYYY-MM", in UTC seconds."""
    match = MONTH.fullmatch(month)
    if not match:
        raise InvalidInput(f"month must be YYYY-MM (e.g. 2026-01), not {month!r}", field="month")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()
