"""Invoices: one per project and month, built from settled charges, rendered as CSV and PDF.

Invariants: every amount is whole cents and the sums are exact — the line amounts add up to
the net, gross − subsidy = net and net + VAT = total. Quantities and unit prices are text,
shown as billed; they never feed back into an amount (a line's amount is the exact sum of the
charges it covers). VAT is taken once, on the net, half up.

Vocabulary: a *charge* (`ChargedUsage`) is one settled attempt; a *line* groups charges by
programme and GPU model (GPU time), by programme (CPU time), or by programme and subsidy rate
(a subsidy: a negative money line).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from aifactory.domain.money import CENT, HOUR_S, euro_text, euros, share_cents
from aifactory.domain.statements import ChargedUsage, Invoice, InvoiceLine

FACILITY = "aifactory"
NO_PROGRAMME = "no programme"


# -- building -------------------------------------------------------------------------------


def build_invoice(
    *,
    number: str,
    project: str,
    organisation: str,
    month: str,
    issued_at: float,
    charges: Sequence[ChargedUsage],
    vat_pct: int,
) -> Invoice:
    """The invoice for `charges` (one project's settled attempts in `month`)."""
    if vat_pct < 0:
        raise ValueError(f"VAT must be 0 % or more, not {vat_pct} %")
    gross = sum(c.gpu_cents + c.cpu_cents for c in charges)
    subsidy = sum(c.subsidy_cents for c in charges)
    net = gross - subsidy
    vat = share_cents(net, vat_pct)
    return Invoice(
        number=number,
        project=project,
        organisation=organisation,
        month=month,
        issued_at=issued_at,
        lines=tuple(_lines(charges)),
        gross_cents=gross,
        subsidy_cents=subsidy,
        net_cents=net,
        vat_pct=vat_pct,
        vat_cents=vat,
        total_cents=net + vat,
    )


def _lines(charges: Sequence[ChargedUsage]) -> Iterator[InvoiceLine]:
    """Per programme (by name): GPU lines by model, then the CPU line, then subsidies by rate."""
    by_programme: dict[str, list[ChargedUsage]] = defaultdict(list)
    for charge in charges:
        by_programme[charge.programme].append(charge)
    for programme in sorted(by_programme):
        label = f"{programme} programme" if programme else NO_PROGRAMME
        group = by_programme[programme]
        yield from _gpu_lines(label, group)
        cpu_s = sum(c.cpu_s for c in group)
        cpu_cents = sum(c.cpu_cents for c in group)
        if cpu_s > 0 or cpu_cents != 0:  # a line for every cent, even without seconds
            yield _time_line(f"CPU time, {label}", "CPU-h", cpu_s, cpu_cents)
        yield from _subsidy_lines(label, group)


def _gpu_lines(label: str, charges: list[ChargedUsage]) -> Iterator[InvoiceLine]:
    by_model: dict[str, list[ChargedUsage]] = defaultdict(list)
    for charge in charges:
        by_model[charge.gpu_model or ""].append(charge)
    for model in sorted(by_model):
        gpu_s = sum(c.gpu_s for c in by_model[model])
        gpu_cents = sum(c.gpu_cents for c in by_model[model])
        if gpu_s > 0 or gpu_cents != 0:  # a line for every cent, even without seconds
            what = f"GPU time {model}" if model else "GPU time"
            yield _time_line(f"{what}, {label}", "GPU-h", gpu_s, gpu_cents)


def _time_line(description: str, unit: str, seconds: int, amount_cents: int) -> InvoiceLine:
    """A line of time: hours and average hourly price as text, the exact amount in cents."""
    hours = Decimal(seconds) / HOUR_S
    unit_price = ""
    if seconds > 0:
        unit_price = str((Decimal(amount_cents) / 100 / hours).quantize(CENT, ROUND_HALF_UP))
    return InvoiceLine(
        description=description,
        quantity=str(hours.quantize(CENT, ROUND_HALF_UP)),
        unit=unit,
        unit_price=unit_price,
        amount_cents=amount_cents,
    )


def _subsidy_lines(label: str, charges: list[ChargedUsage]) -> Iterator[InvoiceLine]:
    by_pct: dict[int, int] = defaultdict(int)
    for charge in charges:
        by_pct[charge.subsidy_pct] += charge.subsidy_cents
    for pct in sorted(by_pct, reverse=True):
        if by_pct[pct] != 0:
            yield InvoiceLine(
                description=f"Subsidy {label} ({pct} %)",
                quantity="",
                unit="",
                unit_price="",
                amount_cents=-by_pct[pct],
            )


# -- rendering --------------------------------------------------------------------------------


def _money(amount_cents: int) -> str:
    return str(euros(amount_cents))


def _issue_date(invoice: Invoice) -> str:
    return datetime.fromtimestamp(invoice.issued_at, UTC).strftime("%Y-%m-%d")


def _totals(invoice: Invoice) -> list[tuple[str, int]]:
    return [
        ("Gross", invoice.gross_cents),
        ("Subsidy", -invoice.subsidy_cents),
        ("Net", invoice.net_cents),
        (f"VAT {invoice.vat_pct} %", invoice.vat_cents),
        ("Total", invoice.total_cents),
    ]


def invoice_csv(invoice: Invoice) -> str:
    """The lines, then gross, subsidy, net, VAT and total rows; amounts in euros (2 decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    currency = invoice.currency.lower()
    writer.writerow(
        ["description", "quantity", "unit", f"unit_price_{currency}", f"amount_{currency}"]
    )
    for line in invoice.lines:
        writer.writerow(
            [line.description, line.quantity, line.unit, line.unit_price, _money(line.amount_cents)]
        )
    for label, amount in _totals(invoice):
        writer.writerow([label, "", "", "", _money(amount)])
    return out.getvalue()


def invoice_pdf(invoice: Invoice) -> bytes:
    """An A4 PDF in the built-in Helvetica; the same invoice always gives the same bytes."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        invariant=1,
        title=f"Invoice {invoice.number}",
        author=FACILITY,
        creator=FACILITY,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
    )
    document.build(_pdf_story(invoice))
    return buffer.getvalue()


def _pdf_story(invoice: Invoice) -> list[Flowable]:
    styles = getSampleStyleSheet()
    header = [
        ["Project", invoice.project],
        ["Organisation", invoice.organisation],
        ["Month", invoice.month],
        ["Issued", f"{_issue_date(invoice)} (UTC)"],
        ["Currency", invoice.currency],
    ]
    return [
        Paragraph(escape(f"Invoice {invoice.number}"), styles["Title"]),
        Paragraph(escape(FACILITY), styles["Heading2"]),
        _header_table(header),
        Spacer(1, 8 * mm),
        _lines_table(invoice, styles["BodyText"]),
        Spacer(1, 6 * mm),
        _totals_table(invoice),
    ]


def _lines_table(invoice: Invoice, text_style: ParagraphStyle) -> Table:
    rows: list[list[object]] = [["Description", "Quantity", "Unit", "Unit price", "Amount"]]
    for line in invoice.lines:
        price = euro_text(_cents_of(line.unit_price)) if line.unit_price else ""
        rows.append(
            [
                Paragraph(escape(line.description), text_style),
                line.quantity,
                line.unit,
                price,
                euro_text(line.amount_cents),
            ]
        )
    if not invoice.lines:
        rows.append(["No usage this month", "", "", "", euro_text(0)])
    table = Table(rows, colWidths=[80 * mm, 22 * mm, 16 * mm, 26 * mm, 30 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _cents_of(price_text: str) -> int:
    return int(Decimal(price_text) * 100)


def _totals_table(invoice: Invoice) -> Table:
    rows = [[label, euro_text(amount)] for label, amount in _totals(invoice)]
    table = Table(rows, colWidths=[40 * mm, 34 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
            ]
        )
    )
    return table


def _header_table(rows: list[list[str]]) -> Table:
    table = Table(rows, hAlign="LEFT")
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold")]))
    return table
