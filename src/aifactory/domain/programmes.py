"""Programmes, calls and allocations: who may get compute, at what price, and how much.

Vocabulary (DESIGN.md §3): a *programme* is a way to get compute (research, startup
accelerator, SME, commercial, government) with eligibility, tariffs, subsidy, a priority weight
and a share of facility capacity for its pool; a *call* opens a programme for proposals with a
GPU-hour budget; an awarded proposal becomes an *allocation*: GPU-hours a project may use
between two dates, optionally with a guaranteed quota of GPUs.

Pure rules only: checks return the reason something is refused, or None.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from aifactory.domain.money import hours_of_ms

ANY_MODEL = "*"  # the tariff key for any GPU model without its own price
MAX_TARIFF = Decimal(1000)  # € per GPU-hour: anything above is a typo, not a price


class ProposalState(enum.StrEnum):
    SUBMITTED = "submitted"
    AWARDED = "awarded"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Tariff:
    """€ per GPU-hour by GPU model (`*` for the rest) and € per CPU-hour."""

    gpu_hour: Mapping[str, Decimal] = field(default_factory=dict)
    cpu_hour: Decimal = Decimal(0)

    def per_gpu_hour(self, gpu_model: str | None) -> Decimal:
        if gpu_model and gpu_model in self.gpu_hour:
            return self.gpu_hour[gpu_model]
        return self.gpu_hour.get(ANY_MODEL, Decimal(0))

    def problem(self) -> tuple[str, str] | None:
        """(field, reason) if a price is negative or absurd."""
        for model, price in self.gpu_hour.items():
            if not price.is_finite() or price < 0 or price > MAX_TARIFF:
                return (
                    "tariffs",
                    f"GPU-hour price for {model!r} must be 0–{MAX_TARIFF} €, not {price}",
                )
        if not self.cpu_hour.is_finite() or self.cpu_hour < 0 or self.cpu_hour > MAX_TARIFF:
            return "cpu_tariff", f"CPU-hour price must be 0–{MAX_TARIFF} €, not {self.cpu_hour}"
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open period [start, end) in UNIX seconds."""

    start: float
    end: float

    def contains(self, at: float) -> bool:
        return self.start <= at < self.end

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end

    def problem(self, what: str) -> str | None:
        if not self.start < self.end:
            return f"{what} must end after it starts"
        return None


def conflict_of_interest(reviewer_orgs: Iterable[int], applicant_org: int) -> bool:
    """A reviewer may not review a proposal from an organisation they belong to."""
    return applicant_org in set(reviewer_orgs)


def eligible(kinds: Iterable[str], org_kind: str) -> bool:
    return org_kind in set(kinds)


@dataclass(frozen=True, slots=True)
class Funds:
    """One allocation as budget enforcement sees it."""

    allocation_id: int
    name: str
    project: str
    window: Window
    balance_gpu_ms: int
    gpu_model: str | None = None  # None: any model
    granted_gpu_ms: int = 0  # award + adjustments: what alert thresholds are a share of


def payer(
    funds: Iterable[Funds], need_gpu_ms: int, gpu_model: str | None, now: float
) -> Funds | str:
    """The allocation that pays for a job needing up to `need_gpu_ms`, or why none can.

    Among the valid allocations that cover the job, the one that expires first pays (use it
    before it is lost), then the lowest id.
    """
    valid = [f for f in funds if f.window.contains(now) and _model_fits(f, gpu_model)]
    if not valid:
        return "the project has no allocation valid now" + (
            f" for GPU model {gpu_model}" if gpu_model else ""
        )
    covering = [f for f in valid if f.balance_gpu_ms >= need_gpu_ms]
    if covering:
        return min(covering, key=lambda f: (f.window.end, f.allocation_id))
    best = max(valid, key=lambda f: (f.balance_gpu_ms, -f.allocation_id))
    left_h = hours_of_ms(max(best.balance_gpu_ms, 0))
    return (
        f"allocation {best.name} has {left_h:.1f} GPU-h left, "
        f"job needs up to {hours_of_ms(need_gpu_ms):.1f}"
    )


def _model_fits(funds: Funds, gpu_model: str | None) -> bool:
    return funds.gpu_model is None or gpu_model is None or funds.gpu_model == gpu_model


ALERT_THRESHOLDS = (80, 100)


def thresholds_crossed(granted: int, used: int) -> list[int]:
    """The alert thresholds (% of what was granted) that use (settled + reserved) has
    reached; both in the same unit (the ledger's GPU-milliseconds)."""
    if granted <= 0:
        return []
    return [t for t in ALERT_THRESHOLDS if used * 100 >= granted * t]


@dataclass(frozen=True, slots=True)
class Award:
    """One allocation valid now, as the scheduler's entitlements see it."""

    project: str
    programme: str
    capacity_share: float  # the programme pool's share of the facility
    award_gpu_s: int
    quota_gpus: int = 0
    priority_weight: int = 0


@dataclass(frozen=True, slots=True)
class Entitlement:
    shares: float
    quota_gpus: int
    priority_weight: int


def entitlements(awards: Iterable[Award]) -> dict[str, Entitlement]:
    """Each project's fair share of the facility, flattened from a two-level tree.

    The facility splits into programme pools by `capacity_share`; within a pool, projects
    share in proportion to their awards. A project's share is the product along its path
    (Slurm's normalised shares), summed over the pools it has allocations in. Quotas add up;
    a project's priority weight is the highest of its programmes'.
    """
    awards = list(awards)
    pool_total: dict[str, int] = {}
    for award in awards:
        pool_total[award.programme] = pool_total.get(award.programme, 0) + award.award_gpu_s
    found: dict[str, Entitlement] = {}
    for award in awards:
        total = pool_total[award.programme]
        part = award.award_gpu_s / total if total > 0 else 0.0
        had = found.get(award.project, Entitlement(0.0, 0, award.priority_weight))
        found[award.project] = Entitlement(
            had.shares + award.capacity_share * part,
            had.quota_gpus + award.quota_gpus,
            max(had.priority_weight, award.priority_weight),
        )
    return found


@dataclass(frozen=True, slots=True)
class JobRules:
    """What the programmes of a project's allocations in force say about a new job.

    `max_gpus`: the largest job any of them admits (None: no limit); `preemptible_default`:
    a job that does not say is preemptible only if every programme in force says so.
    """

    programmes: tuple[str, ...] = ()
    max_gpus: int | None = None
    preemptible_default: bool = False

    def too_large(self, gpus: int) -> str | None:
        if self.max_gpus is None or gpus <= self.max_gpus:
            return None
        names = ", ".join(self.programmes)
        return (
            f"the project's programme ({names}) allows at most {self.max_gpus} GPUs per job; "
            f"this job asks for {gpus}"
        )


def job_rules(programmes: Iterable[tuple[str, int | None, bool]]) -> JobRules:
    """From (name, max GPUs per job, preemptible by default) of each programme in force."""
    found = sorted(set(programmes))
    if not found:
        return JobRules()
    limits = [limit for _, limit, _ in found]
    return JobRules(
        programmes=tuple(name for name, _, _ in found),
        max_gpus=None if None in limits else max(x for x in limits if x is not None),
        preemptible_default=all(default for _, _, default in found),
    )
