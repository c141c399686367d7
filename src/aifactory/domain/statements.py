"""What invoices and funder reports are made of: plain values, built from metered usage.

`accounting.invoices` and `accounting.reports` build these from the store and render them
(CSV, PDF, JSON, charts); the builders that turn facts into statements are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChargedUsage:
    """One settled attempt, as money sees it (from a usage record and its programme)."""

    job_id: int
    attempt: int
    programme: str
    gpu_model: str | None
    gpu_s: int
    cpu_s: int
    gpu_cents: int
    cpu_cents: int
    subsidy_pct: int
    subsidy_cents: int
    ended_at: float


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    quantity: str  # e.g. "12.50" (hours, shown as billed)
    unit: str  # "GPU-h", "CPU-h" or "" for a money line such as a subsidy
    unit_price: str  # e.g. "2.50" (€), "" for money lines
    amount_cents: int


@dataclass(frozen=True, slots=True)
class Invoice:
    number: str  # e.g. "AIF-2026-000012": sequential, never reused
    project: str
    organisation: str
    month: str  # "YYYY-MM"
    issued_at: float
    lines: tuple[InvoiceLine, ...]
    gross_cents: int  # before subsidy
    subsidy_cents: int  # taken off (≥ 0)
    net_cents: int  # gross − subsidy
    vat_pct: int
    vat_cents: int
    total_cents: int  # net + VAT
    currency: str = "EUR"


@dataclass(frozen=True, slots=True)
class UsageFact:
    """One metered attempt, as a funder report sees it."""

    job_id: int
    project: str
    organisation: str
    org_kind: str
    programme: str  # "" when no allocation paid (metering only)
    gpu_model: str | None
    gpu_s: float
    energy_j: float
    energy_measured: bool
    started_at: float
    ended_at: float


@dataclass(frozen=True, slots=True)
class WaitFact:
    """One job start in the period: how long it waited, under which programme."""

    programme: str
    wait_s: float


@dataclass(frozen=True, slots=True)
class ReportInput:
    period_start: float
    period_end: float
    facility_gpus: int  # GPUs the facility offered over the period
    grid_g_per_kwh: float  # grid carbon intensity used for CO2
    promised_share: dict[str, float] = field(default_factory=dict)  # programme → share 0..1
    usage: tuple[UsageFact, ...] = ()
    waits: tuple[WaitFact, ...] = ()
