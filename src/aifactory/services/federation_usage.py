"""Usage returned to the upstream portal: per imported award and month, what it used.

In the spirit of a Waldur site agent's "component usages": one line per award per calendar month
(UTC, cut to the period asked) with its GPU-hours, CPU-hours, energy and cost. Lines are built
from the usage records the invoices bill (services.invoices.charges_of: settled, paid by an
allocation, counted in the month they were booked), so an award's GPU-milliseconds are exactly
its allocation's SETTLE ledger entries in that time, and the export never disagrees with the
ledger or the invoices. `gpu_ms` is given beside the GPU-hours so an upstream can reconcile to
the millisecond. Cost is at the tariffs each attempt settled under: exact, rounded to the cent
once per line (the subsidy likewise); totals are the sums of the lines.

Only awards imported from upstream are reported (other allocations are no upstream's business).
Who may (FEDERATION_EXPORT): facility admins and finance.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.federation import month_of, months
from aifactory.domain.money import MS_PER_HOUR, cents_of, euros, exact_euros
from aifactory.domain.permissions import Action
from aifactory.errors import InvalidInput, NotFound
from aifactory.services.principal import Principal
from aifactory.services.programmes import no_nul
from aifactory.store.models import (
    Allocation,
    FederationAward,
    Programme,
    Project,
    UsageRecord,
)

MAX_SPAN_S = 10 * 366 * 86_400
JOULES_PER_KWH = 3_600_000
CSV_COLUMNS = (
    "award_id",
    "project_id",
    "project",
    "allocation",
    "programme",
    "month",
    "period_start",
    "period_end",
    "attempts",
    "gpu_ms",
    "gpu_hours",
    "cpu_hours",
    "energy_kwh",
    "cost",
    "subsidy",
    "net",
)


@dataclass(frozen=True, slots=True)
class Award:
    """An imported award as its usage lines name it."""

    award_id: str
    upstream_project_id: str
    project: str
    allocation: str
    programme: str


@dataclass(slots=True)
class UsageLine:
    award: Award
    month: str  # "YYYY-MM"
    start: float  # the month, cut to the period asked
    end: float
    attempts: int = 0
    gpu_ms: int = 0
    cpu_ms: int = 0
    energy_j: float = 0.0
    cost: Fraction = field(default_factory=Fraction)  # exact euros
    subsidy: Fraction = field(default_factory=Fraction)

    @property
    def gpu_hours(self) -> float:
        return round(self.gpu_ms / MS_PER_HOUR, 6)

    @property
    def cpu_hours(self) -> float:
        return round(self.cpu_ms / MS_PER_HOUR, 6)

    @property
    def energy_kwh(self) -> float:
        return round(self.energy_j / JOULES_PER_KWH, 6)

    @property
    def cost_cents(self) -> int:
        return cents_of(self.cost)

    @property
    def subsidy_cents(self) -> int:
        return min(cents_of(self.subsidy), self.cost_cents)

    @property
    def net_cents(self) -> int:
        return self.cost_cents - self.subsidy_cents


@dataclass(frozen=True, slots=True)
class UsageExport:
    start: float
    end: float
    project: str | None
    lines: tuple[UsageLine, ...]

    @property
    def gpu_ms(self) -> int:
        return sum(line.gpu_ms for line in self.lines)

    @property
    def cost_cents(self) -> int:
        return sum(line.cost_cents for line in self.lines)

    @property
    def subsidy_cents(self) -> int:
        return sum(line.subsidy_cents for line in self.lines)


def export_usage(
    session: Session,
    principal: Principal,
    *,
    start: float,
    end: float,
    project: str | None = None,
) -> UsageExport:
    """Each imported award's usage booked in [start, end), by month; of one project if named."""
    principal.authorize(Action.FEDERATION_EXPORT)
    if not start < end:
        raise InvalidInput("the period must end after it starts", field="to")
    if end - start > MAX_SPAN_S:
        raise InvalidInput("at most ten years at a time", field="to")
    project_id = None if project is None else _project_id(session, project)
    periods = {month_of(a): (a, b) for a, b in months(start, end)}
    lines: dict[tuple[str, str], UsageLine] = {}
    for record, award in _charges(session, start, end, project_id):
        month = month_of(record.booked_at)
        line = lines.get((award.award_id, month))
        if line is None:
            line = lines[award.award_id, month] = UsageLine(award, month, *periods[month])
        _add(line, record)
    ordered = sorted(lines.values(), key=lambda x: (x.award.project, x.award.award_id, x.month))
    return UsageExport(start, end, project, tuple(ordered))


def _project_id(session: Session, name: str) -> int:
    found = session.scalar(select(Project.id).where(Project.name == no_nul(name)))
    if found is None:
        raise NotFound(f"no project named {name!r}", field="project")
    return found


def _charges(
    session: Session, start: float, end: float, project_id: int | None
) -> list[tuple[UsageRecord, Award]]:
    """The usage records of imported awards booked in [start, end), as invoices select them."""
    stmt = (
        select(
            UsageRecord,
            FederationAward.award_id,
            FederationAward.upstream_project_id,
            Project.name,
            Allocation.name,
            Programme.name,
        )
        .join(FederationAward, FederationAward.allocation_id == UsageRecord.allocation_id)
        .join(Allocation, Allocation.id == UsageRecord.allocation_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .join(Project, Project.id == Allocation.project_id)
        .where(UsageRecord.booked_at >= start, UsageRecord.booked_at < end)
        .order_by(UsageRecord.booked_at, UsageRecord.id)
    )
    if project_id is not None:
        stmt = stmt.where(Allocation.project_id == project_id)
    return [(record, Award(*names)) for record, *names in session.execute(stmt)]


def _add(line: UsageLine, record: UsageRecord) -> None:
    cost = exact_euros(record.gpu_ms, Decimal(record.gpu_price)) + exact_euros(
        record.cpu_ms, Decimal(record.cpu_price)
    )
    line.attempts += 1
    line.gpu_ms += record.gpu_ms
    line.cpu_ms += record.cpu_ms
    line.energy_j += record.energy_j
    line.cost += cost
    line.subsidy += cost * record.subsidy_pct / 100


def usage_csv(export: UsageExport) -> str:
    """The lines as CSV, one header row (`CSV_COLUMNS`), moments as ISO dates."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in export.lines:
        writer.writerow(
            [
                line.award.award_id,
                line.award.upstream_project_id,
                line.award.project,
                line.award.allocation,
                line.award.programme,
                line.month,
                iso_of(line.start),
                iso_of(line.end),
                line.attempts,
                line.gpu_ms,
                line.gpu_hours,
                line.cpu_hours,
                line.energy_kwh,
                euros(line.cost_cents),
                euros(line.subsidy_cents),
                euros(line.net_cents),
            ]
        )
    return out.getvalue()


def iso_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()
