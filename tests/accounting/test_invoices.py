"""Invoices: exact cents, each line rounded once from the exact sum of its charges, VAT half
up, stable lines, and CSV/PDF that read back the same."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pypdf
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from aifactory.accounting.invoices import build_invoice, invoice_csv, invoice_pdf
from aifactory.domain.money import MS_PER_S, share_cents
from aifactory.domain.statements import ChargedUsage, Invoice, InvoiceLine

JAN_2026 = 1_769_904_000.0  # 2026-02-01T00:00:00Z: issued after the month


def a_charge(
    programme: str = "research",
    gpu_model: str | None = "h100",
    *,
    gpu_s: float = 0,
    cpu_s: float = 0,
    gpu_price: str = "2.50",
    cpu_price: str = "0.20",
    subsidy_pct: int = 0,
    job_id: int = 1,
) -> ChargedUsage:
    return ChargedUsage(
        job_id=job_id,
        attempt=1,
        programme=programme,
        gpu_model=gpu_model,
        gpu_ms=round(gpu_s * MS_PER_S),
        cpu_ms=round(cpu_s * MS_PER_S),
        gpu_price=Decimal(gpu_price),
        cpu_price=Decimal(cpu_price),
        subsidy_pct=subsidy_pct,
        ended_at=JAN_2026 - 3600,
    )


def an_invoice(charges: list[ChargedUsage], vat_pct: int = 21, project: str = "llm-eu") -> Invoice:
    return build_invoice(
        number="AIF-2026-000012",
        project=project,
        organisation="Uni A",
        month="2026-01",
        issued_at=JAN_2026,
        charges=charges,
        vat_pct=vat_pct,
    )


WORKED = [  # € 2.50 per GPU-hour, € 0.20 per CPU-hour
    a_charge(gpu_s=7200, cpu_s=3600, subsidy_pct=100, job_id=1),
    a_charge(gpu_s=1000, subsidy_pct=100, job_id=2),
    a_charge("startup", "a100", gpu_s=3600, job_id=3),
]


def test_lines_group_by_programme_and_model_with_exact_amounts() -> None:
    invoice = an_invoice(WORKED)

    assert invoice.lines == (
        InvoiceLine("GPU time h100, research programme", "2.28", "GPU-h", "2.50", 569),
        InvoiceLine("CPU time, research programme", "1.00", "CPU-h", "0.20", 20),
        InvoiceLine("Subsidy research programme (100 %)", "", "", "", -589),
        InvoiceLine("GPU time a100, startup programme", "1.00", "GPU-h", "2.50", 250),
    )
    assert (invoice.gross_cents, invoice.subsidy_cents, invoice.net_cents) == (839, 589, 250)
    # 21 % of € 2.50 is € 0.525: half up gives 53 cents (half even would give 52).
    assert (invoice.vat_cents, invoice.total_cents) == (53, 303)


def test_amount_is_the_exact_price_rounded_once_not_quantity_times_price() -> None:
    # 1000 s is 0.2777… h, shown as 0.28; at € 2.50 that is 69.44… cents, billed as 69.
    invoice = an_invoice([a_charge(gpu_s=1000)], vat_pct=0)

    [line] = invoice.lines
    assert (line.quantity, line.unit_price, line.amount_cents) == ("0.28", "2.48", 69)


def test_two_hundred_sub_second_charges_bill_what_they_ran() -> None:
    # 200 jobs of 0.4 s on one GPU: rounded one by one, each was 0 s and 0 cents.
    invoice = an_invoice([a_charge(gpu_s=0.4, job_id=n) for n in range(200)], vat_pct=0)

    [line] = invoice.lines
    # 80 GPU-s at € 2.50 per GPU-hour: 5.55… cents, rounded once.
    assert (line.quantity, line.amount_cents) == ("0.02", 6)
    assert invoice.net_cents == 6


def test_a_tariff_change_within_the_month_prices_each_charge_at_its_own_tariff() -> None:
    invoice = an_invoice(
        [
            a_charge(gpu_s=1800, gpu_price="2.00", job_id=1),  # 100 cents
            a_charge(gpu_s=1800, gpu_price="3.00", job_id=2),  # 150 cents
            a_charge(gpu_s=1, gpu_price="3.00", job_id=3),  # 0.083… cents
        ],
        vat_pct=0,
    )

    [line] = invoice.lines
    assert (line.quantity, line.amount_cents) == ("1.00", 250)


def test_programme_with_mixed_subsidy_rates_gets_lines_per_rate() -> None:
    invoice = an_invoice(
        [
            a_charge(gpu_s=3600, gpu_price="10", subsidy_pct=50, job_id=1),
            a_charge(gpu_s=3600, gpu_price="10", subsidy_pct=100, job_id=2),
        ]
    )

    assert [(line.description, line.amount_cents) for line in invoice.lines] == [
        ("GPU time h100, research programme (100 % subsidy)", 1000),
        ("Subsidy research programme (100 %)", -1000),
        ("GPU time h100, research programme (50 % subsidy)", 1000),
        ("Subsidy research programme (50 %)", -500),
    ]


def test_a_fully_subsidised_programme_nets_zero_whatever_the_rounding() -> None:
    # GPU 0.6 cents and CPU 0.6 cents: each line rounds once, to a cent, and the subsidy
    # takes what they billed (the exact 1.2 cents, rounded, would leave a cent to pay).
    charge = a_charge(gpu_s=8.64, cpu_s=108, subsidy_pct=100)

    invoice = an_invoice([charge])

    assert [line.amount_cents for line in invoice.lines] == [1, 1, -2]
    assert (invoice.gross_cents, invoice.net_cents) == (2, 0)


def test_metering_only_usage_and_unknown_model_are_named_plainly() -> None:
    invoice = an_invoice([a_charge("", None, gpu_s=1800)])

    assert [line.description for line in invoice.lines] == ["GPU time, no programme"]


def test_empty_month_is_a_valid_invoice_of_zero() -> None:
    invoice = an_invoice([])

    assert invoice.lines == ()
    totals = (invoice.gross_cents, invoice.subsidy_cents, invoice.net_cents, invoice.vat_cents)
    assert (*totals, invoice.total_cents) == (0, 0, 0, 0, 0)
    assert _pdf_text(invoice_pdf(invoice)).count("€ 0.00") >= 5


def test_negative_vat_is_refused() -> None:
    with pytest.raises(ValueError, match="VAT"):
        an_invoice(WORKED, vat_pct=-1)


def test_csv_reads_back_and_adds_up() -> None:
    invoice = an_invoice(WORKED)

    rows = list(csv.DictReader(io.StringIO(invoice_csv(invoice))))

    amounts = {row["description"]: Decimal(row["amount_eur"]) for row in rows}
    lines = rows[: len(invoice.lines)]
    assert [row["description"] for row in lines] == [line.description for line in invoice.lines]
    assert lines[0] == {
        "description": "GPU time h100, research programme",
        "quantity": "2.28",
        "unit": "GPU-h",
        "unit_price_eur": "2.50",
        "amount_eur": "5.69",
    }
    assert sum(Decimal(row["amount_eur"]) for row in lines) == amounts["Net"] == Decimal("2.50")
    assert amounts["Gross"] + amounts["Subsidy"] == amounts["Net"]
    assert amounts["VAT 21 %"] == Decimal("0.53")
    assert amounts["Net"] + amounts["VAT 21 %"] == amounts["Total"] == Decimal("3.03")


def _pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_reads_back_with_number_project_and_total_in_euros() -> None:
    invoice = an_invoice(WORKED, project="llm <eu> & co")

    pdf = invoice_pdf(invoice)

    assert pdf.startswith(b"%PDF-")
    text = _pdf_text(pdf)
    for expected in (
        "Invoice AIF-2026-000012",
        "aifactory",
        "llm <eu> & co",
        "Uni A",
        "2026-01",
        "2026-02-01",
        "Subsidy research programme (100 %)",
        "€ 3.03",
        "EUR",
    ):
        assert expected in text


def test_pdf_is_byte_identical_for_the_same_invoice() -> None:
    assert invoice_pdf(an_invoice(WORKED)) == invoice_pdf(an_invoice(WORKED))


def test_pdf_differs_when_the_invoice_does() -> None:
    invoice = an_invoice(WORKED)

    assert invoice_pdf(invoice) != invoice_pdf(replace(invoice, number="AIF-2026-000013"))


PRICES = st.sampled_from(["0", "0.02", "2.50", "3.10", "999.999999"]) | st.decimals(
    0, 1000, places=6
).map(str)


@st.composite
def charges(draw: st.DrawFn) -> ChargedUsage:
    return a_charge(
        draw(st.sampled_from(["", "research", "startup", "commercial"])),
        draw(st.sampled_from([None, "h100", "a100"])),
        gpu_s=draw(st.integers(0, 10**9)) / MS_PER_S,
        cpu_s=draw(st.integers(0, 10**9)) / MS_PER_S,
        gpu_price=draw(PRICES),
        cpu_price=draw(PRICES),
        subsidy_pct=draw(st.sampled_from([0, 50, 100]) | st.integers(0, 100)),
        job_id=draw(st.integers(1, 50)),
    )


@settings(max_examples=100, deadline=None)
@example([a_charge("", None, cpu_s=0.001)], 0)  # a millisecond still gets its line
@given(st.lists(charges(), max_size=12), st.integers(0, 30))
def test_totals_add_up_to_the_cent(charged: list[ChargedUsage], vat_pct: int) -> None:
    invoice = an_invoice(charged, vat_pct=vat_pct)

    time_lines = [line for line in invoice.lines if line.unit]
    assert invoice.gross_cents == sum(line.amount_cents for line in time_lines)
    assert 0 <= invoice.subsidy_cents <= invoice.gross_cents
    assert invoice.gross_cents - invoice.subsidy_cents == invoice.net_cents
    assert sum(line.amount_cents for line in invoice.lines) == invoice.net_cents
    assert invoice.vat_cents == share_cents(invoice.net_cents, vat_pct)
    assert invoice.net_cents + invoice.vat_cents == invoice.total_cents
    assert an_invoice(list(reversed(charged)), vat_pct=vat_pct) == invoice


def summed_then_rounded_once(charged: list[ChargedUsage]) -> tuple[str, int]:
    """The line as a clerk would write it: add up every record's milliseconds and their price
    at its own tariff, exactly (Decimal, wide enough for any sum drawn here), then round the
    hours and the cents once each, half up."""
    with localcontext() as exact:
        exact.prec = 60
        ms = sum((Decimal(c.gpu_ms) for c in charged), Decimal(0))
        euros = sum((Decimal(c.gpu_ms) * c.gpu_price for c in charged), Decimal(0)) / 3_600_000
        hours = (ms / 3_600_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
        return str(hours), int((euros * 100).quantize(Decimal(1), ROUND_HALF_UP))


@settings(max_examples=200, deadline=None)
@example([a_charge(gpu_s=0.4, job_id=n) for n in range(200)], 100)  # 200 sub-second jobs
@example([a_charge(gpu_s=0.1, job_id=n) for n in range(72)], 0)  # exactly half a cent
@given(
    st.lists(
        st.builds(
            lambda ms, price, n: a_charge(gpu_s=ms / MS_PER_S, gpu_price=price, job_id=n),
            st.integers(0, 10**3) | st.integers(0, 10**10),
            PRICES,
            st.integers(1, 10**6),
        ),
        min_size=1,
        max_size=300,
    ),
    st.sampled_from([0, 50, 100]),
)
def test_an_invoice_line_is_its_records_summed_then_rounded_once(
    charged: list[ChargedUsage], subsidy_pct: int
) -> None:
    """One programme, one GPU model: its GPU line is the exact sum of every record, rounded
    once — never the records rounded one by one and then added up."""
    assume(any(c.gpu_ms for c in charged))
    same_rate = [replace(c, subsidy_pct=subsidy_pct) for c in charged]

    gpu_line = an_invoice(same_rate, vat_pct=0).lines[0]

    assert gpu_line.description == "GPU time h100, research programme"
    assert (gpu_line.quantity, gpu_line.amount_cents) == summed_then_rounded_once(same_rate)
