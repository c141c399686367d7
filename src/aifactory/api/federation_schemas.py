"""Request and response schemas for federation with an upstream portal (docs/federation.md).

A file of award records travels as text in a JSON body (`content`), whatever its format, so the
SHA-256 the import records is that of the very text the portal sent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from aifactory.api.schemas import Request
from aifactory.api.units import moment_at
from aifactory.domain.money import euros
from aifactory.services.federation import ImportReport, RecordOutcome
from aifactory.services.federation_usage import UsageExport, UsageLine

Format = Literal["json", "csv"]


class ImportBody(Request):
    source: str = Field(
        min_length=1, max_length=255, description="the file's name, kept with the import"
    )
    format: Format = Field(description="json: a list of award objects; csv: a header row")
    content: str = Field(min_length=1, description="the file's text (docs/federation.md)")
    dry_run: bool = Field(False, description="report what would happen, keep nothing")


class RecordOutcomeOut(BaseModel):
    index: int
    award_id: str
    outcome: Literal["created", "updated", "unchanged", "refused"]
    project: str
    allocation: str | None
    detail: str = Field(description="refused: why; updated: what changed")

    @classmethod
    def of(cls, r: RecordOutcome) -> RecordOutcomeOut:
        return cls(
            index=r.index,
            award_id=r.award_id,
            outcome=r.outcome,
            project=r.project,
            allocation=r.allocation,
            detail=r.detail,
        )


class ImportOut(BaseModel):
    id: int | None = Field(description="the stored import; null for a dry run")
    actor: str
    at: datetime
    source: str
    sha256: str
    format: Format
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    refused: int
    records: list[RecordOutcomeOut]

    @classmethod
    def of(cls, r: ImportReport) -> ImportOut:
        return cls(
            id=r.id,
            actor=r.actor,
            at=moment_at(r.at),
            source=r.source,
            sha256=r.sha256,
            format=r.format,
            dry_run=r.dry_run,
            created=r.count("created"),
            updated=r.count("updated"),
            unchanged=r.count("unchanged"),
            refused=r.count("refused"),
            records=[RecordOutcomeOut.of(x) for x in r.records],
        )


class UsageLineOut(BaseModel):
    """One award's usage in one month (a Waldur "component usage", by component)."""

    award_id: str
    project_id: str = Field(description="the upstream project's id")
    project: str
    allocation: str
    programme: str
    month: str = Field(description="YYYY-MM (UTC)")
    period_start: datetime
    period_end: datetime
    attempts: int
    gpu_ms: int = Field(description="exact: the allocation's settled GPU-milliseconds")
    gpu_hours: float
    cpu_hours: float
    energy_kwh: float
    cost: Decimal = Field(description="euros at the tariffs settled under, before subsidy")
    subsidy: Decimal
    net: Decimal

    @classmethod
    def of(cls, line: UsageLine) -> UsageLineOut:
        return cls(
            award_id=line.award.award_id,
            project_id=line.award.upstream_project_id,
            project=line.award.project,
            allocation=line.award.allocation,
            programme=line.award.programme,
            month=line.month,
            period_start=moment_at(line.start),
            period_end=moment_at(line.end),
            attempts=line.attempts,
            gpu_ms=line.gpu_ms,
            gpu_hours=line.gpu_hours,
            cpu_hours=line.cpu_hours,
            energy_kwh=line.energy_kwh,
            cost=euros(line.cost_cents),
            subsidy=euros(line.subsidy_cents),
            net=euros(line.net_cents),
        )


class UsageTotalsOut(BaseModel):
    gpu_ms: int
    gpu_hours: float
    cost: Decimal
    subsidy: Decimal
    net: Decimal


class UsageExportOut(BaseModel):
    period_start: datetime
    period_end: datetime
    project: str | None
    usages: list[UsageLineOut]
    totals: UsageTotalsOut

    @classmethod
    def of(cls, export: UsageExport) -> UsageExportOut:
        return cls(
            period_start=moment_at(export.start),
            period_end=moment_at(export.end),
            project=export.project,
            usages=[UsageLineOut.of(line) for line in export.lines],
            totals=UsageTotalsOut(
                gpu_ms=export.gpu_ms,
                gpu_hours=round(export.gpu_ms / 3_600_000, 6),
                cost=euros(export.cost_cents),
                subsidy=euros(export.subsidy_cents),
                net=euros(export.cost_cents - export.subsidy_cents),
            ),
        )
