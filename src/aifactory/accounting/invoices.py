"""Invoices: one per project and month, built from settled charges, rendered as CSV and PDF.

Invariants: every amount is whole cents and the sums are exact — the line amounts add up to
the net, gross − subsidy = net and net + VAT = total. A time line's amount is the exact price
of the milliseconds it covers (each charge at its own tariff) rounded to the cent once, half
up: never a sum of charges rounded one by one, so a thousand sub-second jobs bill what they
ran. A subsidy line is its rate of the time lines above it, rounded once, so a fully
subsidised programme nets exactly zero. Quantities and unit prices are text, shown as billed
(the unit price is the line's average); they never feed back into an amount. VAT is taken
once, on the net, half up.

Vocabulary: a *charge* (`ChargedUsage`) is one settled attempt; a *block* is a programme's
charges at one subsidy rate (one per programme, unless its rate changed within the month); a
*line* groups a block's charges by GPU model (GPU time) or takes them all (CPU time), or its
tokens through the gateway by model (their exact nano-cents, rounded once), or is the block's
subsidy (a negative money line).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from aifactory.domain.money import (
    CENT,
    MS_PER_HOUR,
    TOKENS_PER_PRICE,
    cents_of,
    euro_text,
    euros,
    share_cents,
)
from aifactory.domain.statements import ChargedUsage, Invoice, InvoiceLine, TokenCharge

FACILITY = "aifactory"
MILLIONTH = Decimal("0.000001")  # a token, in millions of tokens
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
    tokens: Sequence[TokenCharge] = (),
) -> Invoice:
    """The invoice for `charges` (one project's settled attempts in `month`) and `tokens`
    (its requests through the gateway in `month`)."""
    if vat_pct < 0:
        raise ValueError(f"VAT must be 0 % or more, not {vat_pct} %")
    blocks = list(_blocks(charges, tokens))
    gross = sum(block.gross_cents for block in blocks)
    subsidy = sum(block.subsidy_cents for block in blocks)
    net = gross - subsidy
    vat = share_cents(net, vat_pct)
    return Invoice(
        number=number,
        project=project,
        organisation=organisation,
        month=month,
        issued_at=issued_at,
        lines=tuple(line for block in blocks for line in block.lines),
        gross_cents=gross,
        subsidy_cents=subsidy,
        net_cents=net,
        vat_pct=vat_pct,
        vat_cents=vat,
        total_cents=net + vat,
    )


@dataclass(frozen=True, slots=True)
class _Block:
    """A programme's charges at one subsidy rate, as lines: time, then the subsidy."""

    time: tuple[InvoiceLine, ...]
    subsidy: InvoiceLine | None

    @property
    def lines(self) -> tuple[InvoiceLine, ...]:
        return self.time if self.subsidy is None else (*self.time, self.subsidy)

    @property
    def gross_cents(self) -> int:
        return sum(line.amount_cents for line in self.time)

    @property
    def subsidy_cents(self) -> int:
        return 0 if self.subsidy is None else -self.subsidy.amount_cents


def _blocks(
    charges: Sequence[ChargedUsage], tokens: Sequence[TokenCharge] = ()
) -> Iterator[_Block]:
    """By programme name, then subsidy rate (highest first)."""
    by_rate: dict[str, dict[int, _Charges]] = defaultdict(lambda: defaultdict(_Charges))
    for charge in charges:
        by_rate[charge.programme][charge.subsidy_pct].usage.append(charge)
    for token in tokens:
        by_rate[token.programme][token.subsidy_pct].tokens.append(token)
    for programme in sorted(by_rate):
        label = f"{programme} programme" if programme else NO_PROGRAMME
        rates = by_rate[programme]
        for pct in sorted(rates, reverse=True):
            # Two rates in one month (the programme's subsidy changed): say which is which.
            suffix = f" ({pct} % subsidy)" if len(rates) > 1 else ""
            yield _block(label, suffix, pct, rates[pct])


@dataclass(slots=True)
class _Charges:
    usage: list[ChargedUsage] = field(default_factory=list)
    tokens: list[TokenCharge] = field(default_factory=list)


def _block(label: str, suffix: str, pct: int, charges: _Charges) -> _Block:
    time = (
        *_gpu_lines(label, suffix, charges.usage),
        *_cpu_lines(label, suffix, charges.usage),
        *_token_lines(label, suffix, charges.tokens),
    )
    amount = share_cents(sum(line.amount_cents for line in time), pct)
    subsidy = None
    if amount != 0:
        subsidy = InvoiceLine(f"Subsidy {label} ({pct} %)", "", "", "", -amount)
    return _Block(time, subsidy)


def _gpu_lines(label: str, suffix: str, charges: list[ChargedUsage]) -> Iterator[InvoiceLine]:
    by_model: dict[str, list[ChargedUsage]] = defaultdict(list)
    for charge in charges:
        by_model[charge.gpu_model or ""].append(charge)
    for model in sorted(by_model):
        group = by_model[model]
        what = f"GPU time {model}" if model else "GPU time"
        yield from _time_line(
            f"{what}, {label}{suffix}",
            "GPU-h",
            sum(c.gpu_ms for c in group),
            sum((c.gpu_euros for c in group), Fraction(0)),
        )


def _cpu_lines(label: str, suffix: str, charges: list[ChargedUsage]) -> Iterator[InvoiceLine]:
    yield from _time_line(
        f"CPU time, {label}{suffix}",
        "CPU-h",
        sum(c.cpu_ms for c in charges),
        sum((c.cpu_euros for c in charges), Fraction(0)),
    )


def _token_lines(label: str, suffix: str, tokens: list[TokenCharge]) -> Iterator[InvoiceLine]:
    """One line per model: its tokens in millions, its exact price rounded once."""
    by_model: dict[str, list[TokenCharge]] = defaultdict(list)
    for charge in tokens:
        by_model[charge.model].append(charge)
    for model in sorted(by_model):
        group = by_model[model]
        count = sum(c.tokens for c in group)
        if count == 0:
            continue
        amount_cents = cents_of(sum((c.euros for c in group), Fraction(0)))
        millions = Decimal(count) / TOKENS_PER_PRICE
        yield InvoiceLine(
            description=f"Tokens {model}, {label}{suffix}",
            quantity=str(millions.quantize(MILLIONTH, ROUND_HALF_UP)),
            unit="M tokens",
            unit_price=str((Decimal(amount_cents) / 100 / millions).quantize(CENT, ROUND_HALF_UP)),
            amount_cents=amount_cents,
        )


def _time_line(description: str, unit: str, ms: int, exact: Fraction) -> Iterator[InvoiceLine]:
    """The line of `ms` milliseconds (none if there are none) whose exact price is `exact` €:
    the amount rounded once, the hours and the average hourly price as text."""
    if ms == 0:
        return
    amount_cents = cents_of(exact)
    hours = Decimal(ms) / MS_PER_HOUR
    yield InvoiceLine(
        description=description,
        quantity=str(hours.quantize(CENT, ROUND_HALF_UP)),
        unit=unit,
        unit_price=str((Decimal(amount_cents) / 100 / hours).quantize(CENT, ROUND_HALF_UP)),
        amount_cents=amount_cents,
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
