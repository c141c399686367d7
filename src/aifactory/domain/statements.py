"""What invoices and funder reports are made of: plain values, built from metered usage.

`accounting.invoices` and `accounting.reports` build these from the store and render them
(CSV, PDF, JSON, charts); the builders that turn facts into statements are pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from aifactory.domain.access_modes import AccessFact
from aifactory.domain.money import NANOCENTS_PER_EURO, cents_of, exact_euros


@dataclass(frozen=True, slots=True)
class ChargedUsage:
    """One settled attempt, as money sees it: the exact time it used and the terms it settled
    under (from its usage record and the programme that paid). It carries no cents: money is
    rounded once, per invoice line, from the exact sum of the charges the line covers."""

    job_id: int
    attempt: int
    programme: str
    gpu_model: str | None
    gpu_ms: int
    cpu_ms: int
    gpu_price: Decimal  # € per GPU-hour
    cpu_price: Decimal  # € per CPU-hour
    subsidy_pct: int
    ended_at: float

    @property
    def gpu_euros(self) -> Fraction:
        return exact_euros(self.gpu_ms, self.gpu_price)

    @property
    def cpu_euros(self) -> Fraction:
        return exact_euros(self.cpu_ms, self.cpu_price)


@dataclass(frozen=True, slots=True)
class TokenCharge:
    """A programme's tokens through the gateway to one model at one subsidy rate, with their
    exact price in nano-cents (each request priced when it was asked, domain.money)."""

    programme: str
    subsidy_pct: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    nanocents: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def euros(self) -> Fraction:
        return Fraction(self.nanocents, NANOCENTS_PER_EURO)


@dataclass(frozen=True, slots=True)
class AtTerms:
    """Usage summed over records that settled under the same terms: how a query groups them
    so that their money can be priced exactly and rounded once (`cost_and_subsidy_cents`)."""

    gpu_ms: int
    cpu_ms: int
    gpu_price: Decimal  # € per GPU-hour
    cpu_price: Decimal  # € per CPU-hour
    subsidy_pct: int

    @property
    def euros(self) -> Fraction:
        return exact_euros(self.gpu_ms, self.gpu_price) + exact_euros(self.cpu_ms, self.cpu_price)


def cost_and_subsidy_cents(usage: Sequence[AtTerms]) -> tuple[int, int]:
    """The cost of the usage and the subsidy on it, each its exact sum rounded once."""
    cost = sum((part.euros for part in usage), Fraction(0))
    subsidy = sum((part.euros * part.subsidy_pct / 100 for part in usage), Fraction(0))
    return cents_of(cost), cents_of(subsidy)


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
    funding: str = ""  # "eu" | "national" (domain.access_modes.Funding); "" when none paid


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
    access: tuple[AccessFact, ...] = ()  # proposals given access in the period (issue 21)
