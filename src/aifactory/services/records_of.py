"""Frozen copies of stored rows, for views: what a face reads of a row, without the row.

A record class names the columns it carries (its dataclass fields); `copy_of` fills it from a
row by those names, so a record never drifts from the column it copies and carries nothing
(a token's hash) it does not name."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


def copy_of(record: type[R], row: object) -> R:
    return record(**{f.name: getattr(row, f.name) for f in fields(record)})


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    id: int
    name: str
    project_id: int
    programme_id: int
    proposal_id: int | None
    award_gpu_s: int
    gpu_model: str | None
    quota_gpus: int
    valid_from: float
    valid_to: float
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    allocation_id: int
    threshold: int
    at: float
    message: str


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    id: int
    number: str
    project_id: int
    month: str
    issued_at: float
    issued_by: str
    currency: str
    vat_pct: int
    gross_cents: int
    subsidy_cents: int
    net_cents: int
    vat_cents: int
    total_cents: int
    lines: list[Any]
    csv: str
    pdf: bytes


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as its owner sees it: never its hash."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class SiteRecord:
    name: str
    country: str
    description: str
    updated_at: float
