"""Usage: what each attempt of a job consumed and cost, read from the usage records.

A usage record is written once, when an attempt ends (accounting.budget.settle); this module
only reads them. A record's cost is its GPU and CPU cents, its net that cost less the subsidy
(the attempt's own figures, each rounded to the cent); totals are priced from the exact
milliseconds at each record's terms and rounded once, so they never add up rounded records.
CO2 is its energy at the facility's grid carbon intensity.

Tokens through the gateway (`tokens`, `token_totals`): the requests asked in the period, summed
per project, model and key, each request at the price it was asked at (exact nano-cents, so a
row's and the totals' money is rounded once).

Who sees what (USAGE_READ): facility admins, finance and operators see every project's usage;
anyone else sees the projects they are a member of, and is told any other project does not
exist. The sums per project (`usage_by_project`) are one GROUP BY over the same records in the
same scope, at most `MAX_PROJECTS` rows, each project's money priced as the totals are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from aifactory.accounting.reports import JOULES_PER_KWH
from aifactory.domain.money import hours_of_ms, token_cost_and_subsidy_cents, whole_seconds
from aifactory.domain.permissions import Action
from aifactory.domain.statements import AtTerms, cost_and_subsidy_cents
from aifactory.errors import InvalidInput
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import (
    Allocation,
    Endpoint,
    InferenceKey,
    InferenceUsage,
    Programme,
    Project,
    UsageRecord,
)

MAX_ROWS = 10_000
MAX_PROJECTS = 200
PROJECT_CHOICES = 500


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One usage record with the names it points to."""

    record: UsageRecord
    project: str
    allocation: str | None  # None: metered only, no allocation paid
    programme: str | None
    grid_g_per_kwh: float

    @property
    def gpu_hours(self) -> float:
        return hours_of_ms(self.record.gpu_ms)

    @property
    def energy_source(self) -> Literal["measured", "modelled"]:
        return "measured" if self.record.energy_measured else "modelled"

    @property
    def co2_g(self) -> float:
        return self.record.energy_j / JOULES_PER_KWH * self.grid_g_per_kwh

    @property
    def cost_cents(self) -> int:
        return self.record.gpu_cents + self.record.cpu_cents

    @property
    def net_cents(self) -> int:
        return self.cost_cents - self.record.subsidy_cents


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over every record that matched, even those `rows` leaves out."""

    records: int
    gpu_ms: int
    cpu_ms: int
    energy_j: float
    co2_g: float
    cost_cents: int  # the exact cost of every record, rounded once
    subsidy_cents: int  # likewise

    @property
    def gpu_hours(self) -> float:
        return hours_of_ms(self.gpu_ms)

    @property
    def gpu_s(self) -> int:
        return whole_seconds(self.gpu_ms)

    @property
    def cpu_s(self) -> int:
        return whole_seconds(self.cpu_ms)

    @property
    def net_cents(self) -> int:
        return self.cost_cents - self.subsidy_cents


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    """One project's records of a period, summed."""

    project: str
    records: int
    gpu_ms: int
    energy_j: float
    cost_cents: int  # priced from the exact milliseconds at each record's terms, rounded once
    subsidy_cents: int  # likewise
    grid_g_per_kwh: float

    @property
    def gpu_hours(self) -> float:
        return hours_of_ms(self.gpu_ms)

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / JOULES_PER_KWH

    @property
    def co2_kg(self) -> float:
        return self.energy_kwh * self.grid_g_per_kwh / 1000

    @property
    def net_cents(self) -> int:
        return self.cost_cents - self.subsidy_cents


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A project's requests to one model with one key, summed."""

    project: str
    model: str
    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_cents: int
    subsidy_cents: int
    cost_nanocents: int = 0  # exact: tokens cost fractions of a cent

    @property
    def net_cents(self) -> int:
        return self.cost_cents - self.subsidy_cents


@dataclass(frozen=True, slots=True)
class Usage:
    rows: list[UsageRow]  # the first `limit`, by end time
    totals: UsageTotals
    tokens: list[TokenRow] = field(default_factory=list)  # the first `limit`, most tokens first
    token_totals: TokenRow | None = None  # over every request that matched


def usage(
    session: Session,
    principal: Principal,
    *,
    project: str | None,
    start: float | None,
    end: float | None,
    grid_g_per_kwh: float,
    limit: int = MAX_ROWS,
) -> Usage:
    """The usage records that ended in [start, end) (either side open if None), by end time."""
    if start is not None and end is not None and not start < end:
        raise InvalidInput("the period must end after it starts", field="to")
    stmt = select(UsageRecord)
    scope: list[int] | None = None
    if project is not None:
        scope = [project_by_name(session, principal, project, action=Action.USAGE_READ).id]
    else:
        scope = principal.projects_for(Action.USAGE_READ)
    if scope is not None:
        stmt = stmt.where(UsageRecord.project_id.in_(scope))
    if start is not None:
        stmt = stmt.where(UsageRecord.ended_at >= start)
    if end is not None:
        stmt = stmt.where(UsageRecord.ended_at < end)
    rows = _rows(session, stmt, limit, grid_g_per_kwh)
    tokens = _token_rows(session, scope, start, end)
    return Usage(
        rows,
        _totals(session, stmt, grid_g_per_kwh),
        sorted(tokens, key=lambda t: (-t.prompt_tokens - t.completion_tokens, t.model))[:limit],
        _token_totals(session, scope, start, end),
    )


def _token_rows(
    session: Session, scope: list[int] | None, start: float | None, end: float | None
) -> list[TokenRow]:
    names = (Project.name, Endpoint.name, InferenceKey.name)
    stmt = (
        _token_sums(scope, start, end)
        .add_columns(*names)
        .join(Project, Project.id == InferenceUsage.project_id)
        .join(Endpoint, Endpoint.id == InferenceUsage.endpoint_id)
        .join(InferenceKey, InferenceKey.id == InferenceUsage.key_id)
        .group_by(*names)
    )
    parts: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in session.execute(stmt):
        parts[(row[-3], row[-2], row[-1])].append(row[:-3])
    return [_token_row(*names, found) for names, found in parts.items()]


def _token_totals(
    session: Session, scope: list[int] | None, start: float | None, end: float | None
) -> TokenRow:
    return _token_row("", "", "", list(session.execute(_token_sums(scope, start, end))))


def _token_sums(
    scope: list[int] | None, start: float | None, end: float | None
) -> Select[int, int, int, int, int]:
    """Sums by subsidy rate (the rate is needed to price the subsidy exactly)."""
    stmt = select(
        InferenceUsage.subsidy_pct,
        func.count(),
        func.sum(InferenceUsage.prompt_tokens),
        func.sum(InferenceUsage.completion_tokens),
        func.sum(InferenceUsage.cost_nanocents),
    ).group_by(InferenceUsage.subsidy_pct)
    if scope is not None:
        stmt = stmt.where(InferenceUsage.project_id.in_(scope))
    if start is not None:
        stmt = stmt.where(InferenceUsage.at >= start)
    if end is not None:
        stmt = stmt.where(InferenceUsage.at < end)
    return stmt


def _token_row(project: str, model: str, key: str, parts: list[Any]) -> TokenRow:
    """From (subsidy %, requests, prompt, completion, nano-cents) by rate: money rounded once."""
    cost, subsidy = token_cost_and_subsidy_cents((int(p[4] or 0), int(p[0])) for p in parts)
    return TokenRow(
        project,
        model,
        key,
        sum(int(p[1]) for p in parts),
        sum(int(p[2] or 0) for p in parts),
        sum(int(p[3] or 0) for p in parts),
        cost,
        subsidy,
        sum(int(p[4] or 0) for p in parts),
    )


def usage_by_project(
    session: Session,
    principal: Principal,
    *,
    project: str | None,
    start: float,
    end: float,
    grid_g_per_kwh: float,
) -> list[ProjectUsage]:
    """The records that ended in [start, end) summed per project, most GPU-hours first (then by
    name), the first `MAX_PROJECTS`: `project`'s alone if named, else every project in the
    principal's USAGE_READ scope."""
    terms = (UsageRecord.gpu_price, UsageRecord.cpu_price, UsageRecord.subsidy_pct)
    stmt = (
        select(
            Project.name,
            func.count(),
            func.sum(UsageRecord.gpu_ms),
            func.sum(UsageRecord.cpu_ms),
            func.sum(UsageRecord.energy_j),
            *terms,
        )
        .join(Project, Project.id == UsageRecord.project_id)
        .where(UsageRecord.ended_at >= start, UsageRecord.ended_at < end)
        .group_by(Project.name, *terms)
    )
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.USAGE_READ)
        stmt = stmt.where(UsageRecord.project_id == found.id)
    elif (scope := principal.projects_for(Action.USAGE_READ)) is not None:
        stmt = stmt.where(UsageRecord.project_id.in_(scope))
    parts: dict[str, list[tuple[int, float, AtTerms]]] = defaultdict(list)
    for name, n, gpu_ms, cpu_ms, energy_j, gpu_price, cpu_price, pct in session.execute(stmt):
        parts[name].append(
            (int(n), float(energy_j), at_terms(gpu_ms, cpu_ms, gpu_price, cpu_price, pct))
        )
    rows = [
        _project_usage(name, found_parts, grid_g_per_kwh) for name, found_parts in parts.items()
    ]
    return sorted(rows, key=lambda row: (-row.gpu_ms, row.project))[:MAX_PROJECTS]


def _project_usage(name: str, parts: list[tuple[int, float, AtTerms]], grid: float) -> ProjectUsage:
    cost, subsidy = cost_and_subsidy_cents([part for _, _, part in parts])
    records = sum(n for n, _, _ in parts)
    gpu_ms = sum(part.gpu_ms for _, _, part in parts)
    energy_j = sum(energy for _, energy, _ in parts)
    return ProjectUsage(name, records, gpu_ms, energy_j, cost, subsidy, grid)


def project_names(session: Session, principal: Principal, action: Action) -> list[str]:
    """The projects where the principal may do `action`, by name (the first `PROJECT_CHOICES`):
    the choices of a form that asks for one."""
    stmt = select(Project.name).order_by(Project.name).limit(PROJECT_CHOICES)
    if (scope := principal.projects_for(action)) is not None:
        stmt = stmt.where(Project.id.in_(scope))
    return list(session.scalars(stmt))


def job_usage(session: Session, job_id: int, *, grid_g_per_kwh: float) -> list[UsageRow]:
    """Each ended attempt of one job (the caller checked the job is visible)."""
    stmt = select(UsageRecord).where(UsageRecord.job_id == job_id)
    return _rows(session, stmt, MAX_ROWS, grid_g_per_kwh)


def _rows(
    session: Session, records: Select[UsageRecord], limit: int, grid_g_per_kwh: float
) -> list[UsageRow]:
    stmt = (
        records.add_columns(Project.name, Allocation.name, Programme.name)
        .join(Project, Project.id == UsageRecord.project_id)
        .outerjoin(Allocation, Allocation.id == UsageRecord.allocation_id)
        .outerjoin(Programme, Programme.id == Allocation.programme_id)
        .order_by(UsageRecord.ended_at, UsageRecord.id)
        .limit(limit)
    )
    return [
        UsageRow(record, project, allocation, programme, grid_g_per_kwh)
        for record, project, allocation, programme in session.execute(stmt)
    ]


def _totals(session: Session, records: Select[UsageRecord], grid_g_per_kwh: float) -> UsageTotals:
    matched = records.subquery()
    terms = (matched.c.gpu_price, matched.c.cpu_price, matched.c.subsidy_pct)
    stmt = select(
        func.count(),
        func.sum(matched.c.gpu_ms),
        func.sum(matched.c.cpu_ms),
        func.sum(matched.c.energy_j),
        *terms,
    ).group_by(*terms)
    counted = [
        (int(n), float(energy_j), at_terms(gpu_ms, cpu_ms, gpu_price, cpu_price, pct))
        for n, gpu_ms, cpu_ms, energy_j, gpu_price, cpu_price, pct in session.execute(stmt)
    ]
    parts = [part for _, _, part in counted]
    cost, subsidy = cost_and_subsidy_cents(parts)
    energy_j = sum(energy for _, energy, _ in counted)
    return UsageTotals(
        records=sum(n for n, _, _ in counted),
        gpu_ms=sum(part.gpu_ms for part in parts),
        cpu_ms=sum(part.cpu_ms for part in parts),
        energy_j=energy_j,
        co2_g=energy_j / JOULES_PER_KWH * grid_g_per_kwh,
        cost_cents=cost,
        subsidy_cents=subsidy,
    )


def at_terms(gpu_ms: Any, cpu_ms: Any, gpu_price: str, cpu_price: str, pct: int) -> AtTerms:
    """One row of sums grouped by terms (PostgreSQL sums BIGINT as NUMERIC: back to int)."""
    return AtTerms(int(gpu_ms), int(cpu_ms), Decimal(gpu_price), Decimal(cpu_price), int(pct))
