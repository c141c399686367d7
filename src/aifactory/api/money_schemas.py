"""Request and response schemas for usage, invoices and funder reports.

Units at the API: moments are ISO 8601 datetimes in UTC; money is euros as text with two
decimals ("12.34", negative for money taken off); GPU time is GPU-seconds (exact) and
GPU-hours (a float, for reading); energy is joules, CO2 grams.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from aifactory.api.schemas import JobDetail, Request
from aifactory.api.units import moment_at, money
from aifactory.domain.money import exact_euros_text
from aifactory.services.invoices import MONTH, MONTH_PATTERN, InvoiceView
from aifactory.services.jobs import DataUse
from aifactory.services.usage import TokenRow, UsageRow, UsageTotals

# The charts and formats accounting.reports draws (a test checks they agree).
ChartName = Literal["gpu_hours_by_programme", "gpu_hours_by_org_kind", "pool_share", "waiting_time"]
ChartFormat = Literal["png", "svg"]
CHART_MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}


class UsageRecordOut(BaseModel):
    job_id: int
    attempt: int
    project: str
    allocation: str | None = Field(description="none: metered only, nothing billed")
    programme: str | None
    gpu_model: str | None
    gpus: int
    cpus: int
    started_at: datetime
    ended_at: datetime
    gpu_s: int
    gpu_hours: float
    cpu_s: int
    energy_j: float
    energy_source: Literal["measured", "modelled"]
    co2_g: float
    cost: str = Field(description="GPU and CPU time, € before subsidy")
    subsidy: str
    net: str

    @classmethod
    def of(cls, row: UsageRow) -> UsageRecordOut:
        record = row.record
        return cls(
            job_id=record.job_id,
            attempt=record.attempt,
            project=row.project,
            allocation=row.allocation,
            programme=row.programme,
            gpu_model=record.gpu_model,
            gpus=record.gpus,
            cpus=record.cpus,
            started_at=moment_at(record.started_at),
            ended_at=moment_at(record.ended_at),
            gpu_s=record.gpu_s,
            gpu_hours=row.gpu_hours,
            cpu_s=record.cpu_s,
            energy_j=record.energy_j,
            energy_source=row.energy_source,
            co2_g=row.co2_g,
            cost=money(row.cost_cents),
            subsidy=money(record.subsidy_cents),
            net=money(row.net_cents),
        )


class JobDatasetOut(BaseModel):
    """A dataset the job declared, and where its project's right to read it stands now."""

    dataset: str
    version: int
    env: str = Field(description="the variable the job finds the path in")
    path: str
    version_state: str = Field(description="present, erasing or erased")
    access: str = Field(description="owner, granted, revoked, expired or none")
    note: str

    @classmethod
    def of(cls, use: DataUse) -> JobDatasetOut:
        return cls(
            dataset=use.dataset,
            version=use.version,
            env=use.env_name,
            path=use.path,
            version_state=use.version_state,
            access=use.access,
            note=use.note,
        )


class JobDetailOut(JobDetail):
    usage: list[UsageRecordOut] = Field(
        default_factory=list, description="each ended attempt: what it used and what it cost"
    )
    datasets: list[JobDatasetOut] = Field(default_factory=list)


class UsageTotalsOut(BaseModel):
    records: int = Field(description="every record that matched, listed or not")
    gpu_s: int
    gpu_hours: float
    cpu_s: int
    energy_j: float
    co2_g: float
    cost: str
    subsidy: str
    net: str

    @classmethod
    def of(cls, totals: UsageTotals) -> UsageTotalsOut:
        return cls(
            records=totals.records,
            gpu_s=totals.gpu_s,
            gpu_hours=totals.gpu_hours,
            cpu_s=totals.cpu_s,
            energy_j=totals.energy_j,
            co2_g=totals.co2_g,
            cost=money(totals.cost_cents),
            subsidy=money(totals.subsidy_cents),
            net=money(totals.net_cents),
        )


class TokenUsageOut(BaseModel):
    """Requests through the gateway (/v1), summed; money at the tariffs they were asked at."""

    project: str
    model: str
    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: str
    cost_exact: str = Field(description="the cost before rounding to the cent, in euros")
    subsidy: str
    net: str

    @classmethod
    def of(cls, row: TokenRow) -> TokenUsageOut:
        return cls(
            project=row.project,
            model=row.model,
            key=row.key,
            requests=row.requests,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost=money(row.cost_cents),
            cost_exact=exact_euros_text(row.cost_nanocents),
            subsidy=money(row.subsidy_cents),
            net=money(row.net_cents),
        )


class UsageOut(BaseModel):
    records: list[UsageRecordOut] = Field(description="by end time; at most `limit`")
    totals: UsageTotalsOut
    tokens: list[TokenUsageOut] = Field(
        description="requests through the gateway asked in the period, per project, model and "
        "key; most tokens first, at most `limit`"
    )
    token_totals: TokenUsageOut = Field(description="over every request that matched")


def _month(value: str) -> str:
    if not MONTH.fullmatch(value):
        raise ValueError("must be YYYY-MM, e.g. 2026-01")
    return value


Month = Annotated[
    str,
    AfterValidator(_month),
    WithJsonSchema({"type": "string", "pattern": MONTH_PATTERN, "description": "YYYY-MM (UTC)"}),
]


class InvoiceIssue(Request):
    month: Month = Field(description="YYYY-MM: a month that has ended (UTC)")


class InvoiceLineOut(BaseModel):
    description: str
    quantity: str = Field(description='hours as billed, e.g. "12.50"; "" for money lines')
    unit: str = Field(description='"GPU-h", "CPU-h", or "" for money lines')
    unit_price: str
    amount: str


class InvoiceOut(BaseModel):
    number: str
    project: str
    month: str
    issued_at: datetime
    issued_by: str
    currency: str
    vat_pct: int
    gross: str
    subsidy: str
    net: str
    vat: str
    total: str
    lines: list[InvoiceLineOut]

    @classmethod
    def of(cls, view: InvoiceView) -> InvoiceOut:
        invoice = view.invoice
        return cls(
            number=invoice.number,
            project=view.project,
            month=invoice.month,
            issued_at=moment_at(invoice.issued_at),
            issued_by=invoice.issued_by,
            currency=invoice.currency,
            vat_pct=invoice.vat_pct,
            gross=money(invoice.gross_cents),
            subsidy=money(invoice.subsidy_cents),
            net=money(invoice.net_cents),
            vat=money(invoice.vat_cents),
            total=money(invoice.total_cents),
            lines=[_line(line) for line in invoice.lines],
        )


def _line(stored: dict[str, Any]) -> InvoiceLineOut:
    return InvoiceLineOut(
        description=stored["description"],
        quantity=stored["quantity"],
        unit=stored["unit"],
        unit_price=stored["unit_price"],
        amount=money(int(stored["amount_cents"])),
    )
