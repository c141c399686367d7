"""Request and response schemas for programmes, calls, proposals and allocations.

Units at the API: moments are ISO 8601 datetimes (a naive one is read as UTC; the store keeps
UNIX seconds), GPU time is GPU-hours as a float, money is euros as text with at least two
decimals ("2.50"). Schemas check types and sizes; the services check the rules (ranges,
windows, budgets) and name the field at fault, so each rule is written once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field

from aifactory.api.schemas import Name, Request
from aifactory.api.units import Moment, moment_at, money
from aifactory.domain.access_modes import AccessMode, CallTerms, Funding, Track
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import CENT, gpu_hours
from aifactory.domain.programmes import ProposalState
from aifactory.domain.tenancy import OrgKind
from aifactory.faces.inputs import Title as Title
from aifactory.services.allocations import AllocationView
from aifactory.services.programmes import CallView, ProgrammeSpec
from aifactory.services.proposals import ProposalView, ReviewView

Price = Annotated[Decimal, Field(strict=False, description='euros, e.g. "2.50"')]
Hours = Annotated[float, Field(allow_inf_nan=False, description="GPU-hours")]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
GpuModel = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else moment_at(ts)


def price(text: str) -> str:
    """A stored tariff with at least two decimals: "2.5" → "2.50", "0.0125" stays."""
    value = Decimal(text)
    return str(value.quantize(CENT)) if value == value.quantize(CENT) else text


# ---- programmes and calls -----------------------------------------------------------------


class ProgrammeBody(Request):
    title: Title
    eligible_kinds: list[Annotated[OrgKind, Field(strict=False)]] = Field(
        min_length=1, max_length=len(OrgKind), description="organisation kinds that may apply"
    )
    gpu_tariffs: dict[GpuModel, Price] = Field(
        max_length=64, description='€ per GPU-hour by GPU model; "*" for any other model'
    )
    cpu_tariff: Price = Field(Decimal(0), description="€ per CPU-hour")
    prompt_token_tariff: Price = Field(
        Decimal(0), description="€ per million prompt tokens through the gateway (/v1)"
    )
    completion_token_tariff: Price = Field(
        Decimal(0), description="€ per million completion tokens through the gateway (/v1)"
    )
    subsidy_pct: int = Field(0, description="0–100: the share of the cost the programme pays")
    priority_weight: int = Field(0, description="−1000–1000, added to its jobs' priority")
    preemptible_default: bool = False
    max_gpus_per_job: int | None = Field(None, description="at least 1; none: no limit")
    capacity_share: float = Field(
        allow_inf_nan=False,
        description="above 0, at most 1; all programmes' shares sum to at most 1",
    )
    starter_gpu_hours: Hours = Field(
        0.0, description="requests up to this are awarded at once; 0: never"
    )
    starter_days: int = Field(30, description="how long a starter allocation lasts, 1–3660")
    track: Annotated[Track, Field(strict=False)] | None = Field(
        None, description="science, innovation (free) or industry (pay per use); none: no track"
    )

    def spec(self) -> ProgrammeSpec:
        return ProgrammeSpec(
            title=self.title,
            eligible_kinds=tuple(self.eligible_kinds),
            gpu_tariffs=dict(self.gpu_tariffs),
            capacity_share=self.capacity_share,
            cpu_tariff=self.cpu_tariff,
            subsidy_pct=self.subsidy_pct,
            priority_weight=self.priority_weight,
            preemptible_default=self.preemptible_default,
            max_gpus_per_job=self.max_gpus_per_job,
            starter_gpu_hours=self.starter_gpu_hours,
            starter_days=self.starter_days,
            prompt_token_tariff=self.prompt_token_tariff,
            completion_token_tariff=self.completion_token_tariff,
            track=self.track,
        )


class ProgrammeCreate(ProgrammeBody):
    name: Name


class ProgrammeOut(BaseModel):
    name: str
    title: str
    eligible_kinds: list[OrgKind]
    gpu_tariffs: dict[str, str]
    cpu_tariff: str
    prompt_token_tariff: str
    completion_token_tariff: str
    subsidy_pct: int
    priority_weight: int
    preemptible_default: bool
    max_gpus_per_job: int | None
    capacity_share: float
    starter_gpu_hours: float
    starter_days: int
    track: str | None
    created_at: datetime

    @classmethod
    def of(cls, programme: Any) -> ProgrammeOut:
        return cls(
            name=programme.name,
            title=programme.title,
            eligible_kinds=programme.eligible_kinds,
            gpu_tariffs={m: price(p) for m, p in programme.gpu_tariffs.items()},
            cpu_tariff=price(programme.cpu_tariff),
            prompt_token_tariff=price(programme.prompt_token_tariff),
            completion_token_tariff=price(programme.completion_token_tariff),
            subsidy_pct=programme.subsidy_pct,
            priority_weight=programme.priority_weight,
            preemptible_default=programme.preemptible_default,
            max_gpus_per_job=programme.max_gpus_per_job,
            capacity_share=programme.capacity_share,
            starter_gpu_hours=programme.starter_gpu_hours,
            starter_days=programme.starter_days,
            track=programme.track,
            created_at=_at(programme.created_at),
        )


class CallCreate(Request):
    name: Name
    programme: Name
    title: Title
    opens_at: Moment
    closes_at: Moment
    budget_gpu_hours: Hours
    access_mode: Annotated[AccessMode, Field(strict=False)] = Field(
        AccessMode.REVIEWED, description="reviewed, playground, fast_lane or large_scale"
    )
    ceiling_gpu_hours: Hours | None = Field(
        None, description="most a proposal may get; a playground needs one, fast lane ≤ 50000"
    )
    min_days: int | None = Field(None, description="shortest allocation; none: the mode's")
    max_days: int | None = Field(None, description="longest allocation; none: the mode's")
    cutoff_days: list[int] = Field(
        default_factory=list, max_length=28, description="large scale: days of the month, 1–28"
    )
    funding: Annotated[Funding, Field(strict=False)] = Field(
        Funding.NATIONAL, description="who pays for its capacity: eu or national"
    )

    def terms(self) -> CallTerms:
        return CallTerms(
            mode=self.access_mode,
            ceiling_gpu_hours=self.ceiling_gpu_hours,
            min_days=self.min_days,
            max_days=self.max_days,
            cutoff_days=tuple(self.cutoff_days),
            funding=self.funding,
        )


class CallOut(BaseModel):
    name: str
    programme: str
    title: str
    opens_at: datetime
    closes_at: datetime
    open: bool = Field(description="open for proposals now")
    budget_gpu_hours: float
    awarded_gpu_hours: float = Field(description="awarded so far from its proposals")
    left_gpu_hours: float
    access_mode: AccessMode
    ceiling_gpu_hours: float | None
    min_days: int | None
    max_days: int | None
    cutoff_days: list[int]
    funding: Funding

    @classmethod
    def of(cls, view: CallView) -> CallOut:
        call, terms = view.call, view.call.terms
        return cls(
            name=call.name,
            programme=view.programme,
            title=call.title,
            opens_at=_at(call.opens_at),
            closes_at=_at(call.closes_at),
            open=view.open_now,
            budget_gpu_hours=call.budget_gpu_hours,
            awarded_gpu_hours=view.awarded_gpu_hours,
            left_gpu_hours=view.left_gpu_hours,
            access_mode=terms.mode,
            ceiling_gpu_hours=terms.ceiling_gpu_hours,
            min_days=terms.min_days,
            max_days=terms.max_days,
            cutoff_days=list(terms.cutoff_days),
            funding=terms.funding,
        )


# ---- proposals and reviews ----------------------------------------------------------------


class ProposalSubmit(Request):
    call: Name
    project: Name
    title: Title
    abstract: Text
    justification: Text
    requested_gpu_hours: Hours
    gpu_model: GpuModel | None = None
    planned_datasets: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=100, description="names of the datasets it will use"
    )
    requested_days: int | None = Field(
        None, description="how long, in days, within the call's durations; none: its longest"
    )


class ReviewerAssign(Request):
    reviewer: Name


class ReviewSubmit(Request):
    score: int = Field(description="1 (poor) to 5 (excellent)")
    comment: Text


class AwardBody(Request):
    gpu_hours: Hours
    valid_from: Moment
    valid_to: Moment
    quota_gpus: int = Field(0, description="GPUs the project can always get back")
    gpu_model: GpuModel | None = Field(None, description="default: the one the proposal asked")
    note: Reason | None = None


class RejectBody(Request):
    note: Reason


class ReviewOut(BaseModel):
    reviewer: str | None = Field(description="shown to admins only")
    score: int | None
    comment: str | None
    assigned_at: datetime
    reviewed_at: datetime | None

    @classmethod
    def of(cls, view: ReviewView) -> ReviewOut:
        return cls(
            reviewer=view.reviewer,
            score=view.score,
            comment=view.comment,
            assigned_at=_at(view.assigned_at),
            reviewed_at=_at(view.reviewed_at),
        )


class ProposalOut(BaseModel):
    id: int
    call: str
    programme: str
    project: str
    title: str
    abstract: str
    justification: str
    requested_gpu_hours: float
    gpu_model: str | None
    planned_datasets: list[str]
    state: ProposalState
    submitted_by: str
    submitted_at: datetime
    decided_at: datetime | None
    decision_note: str | None
    allocation: str | None = Field(description="the allocation it was awarded as")
    reviews: list[ReviewOut]
    requested_days: int | None
    access_mode: AccessMode
    deadline: datetime | None = Field(description="when its answer is due; none: no deadline")
    late: bool = Field(description="answered, or still open, after its deadline")

    @classmethod
    def of(cls, view: ProposalView, now: float) -> ProposalOut:
        p = view.proposal
        return cls(
            id=p.id,
            call=view.call,
            programme=view.programme,
            project=view.project,
            title=p.title,
            abstract=p.abstract,
            justification=p.justification,
            requested_gpu_hours=p.requested_gpu_hours,
            gpu_model=p.gpu_model,
            planned_datasets=p.planned_datasets,
            state=ProposalState(p.state),
            submitted_by=view.submitted_by,
            submitted_at=_at(p.submitted_at),
            decided_at=_at(p.decided_at),
            decision_note=p.decision_note,
            allocation=view.allocation,
            reviews=[ReviewOut.of(r) for r in view.reviews],
            requested_days=p.requested_days,
            access_mode=AccessMode(view.mode),
            deadline=_at(view.deadline),
            late=view.late(now),
        )


# ---- allocations and their ledger ---------------------------------------------------------


class AllocationCreate(Request):
    project: Name
    programme: Name
    gpu_hours: Hours
    valid_from: Moment
    valid_to: Moment
    quota_gpus: int = Field(0, description="GPUs the project can always get back")
    gpu_model: GpuModel | None = Field(None, description="none: any model")
    reason: Reason


class AdjustBody(Request):
    gpu_hours: Hours = Field(description="signed: positive adds, negative takes")
    reason: Reason


class AlertOut(BaseModel):
    threshold: int = Field(description="% of the allocation used or reserved")
    at: datetime
    message: str


class AllocationOut(BaseModel):
    name: str
    project: str
    programme: str
    proposal_id: int | None
    gpu_model: str | None
    quota_gpus: int
    valid_from: datetime
    valid_to: datetime
    active: bool = Field(description="valid now")
    award_gpu_hours: float
    adjusted_gpu_hours: float
    settled_gpu_hours: float = Field(description="used by finished job attempts")
    reserved_gpu_hours: float = Field(description="held for running jobs")
    left_gpu_hours: float
    created_by: str
    created_at: datetime
    alerts: list[AlertOut]

    @classmethod
    def of(cls, view: AllocationView) -> AllocationOut:
        a, b = view.allocation, view.balance
        return cls(
            name=a.name,
            project=view.project,
            programme=view.programme,
            proposal_id=a.proposal_id,
            gpu_model=a.gpu_model,
            quota_gpus=a.quota_gpus,
            valid_from=_at(a.valid_from),
            valid_to=_at(a.valid_to),
            active=view.active,
            award_gpu_hours=gpu_hours(b.awarded),
            adjusted_gpu_hours=gpu_hours(b.adjusted),
            settled_gpu_hours=gpu_hours(b.settled),
            reserved_gpu_hours=gpu_hours(b.reserved),
            left_gpu_hours=gpu_hours(b.left),
            created_by=a.created_by,
            created_at=_at(a.created_at),
            alerts=[
                AlertOut(threshold=x.threshold, at=_at(x.at), message=x.message)
                for x in view.alerts
            ],
        )


class LedgerEntryOut(BaseModel):
    key: str
    kind: EntryKind
    gpu_hours: float = Field(description="signed effect on the balance")
    gpu_s: int = Field(description="the same, exactly, in GPU-seconds")
    cost: str = Field(description="€, for a settlement")
    subsidy: str = Field(description="€ of the cost the programme pays")
    at: datetime
    actor: str
    reason: str
    job_id: int | None
    attempt: int | None

    @classmethod
    def of(cls, entry: Any) -> LedgerEntryOut:
        return cls(
            key=entry.key,
            kind=EntryKind(entry.kind),
            gpu_hours=gpu_hours(entry.gpu_s),
            gpu_s=entry.gpu_s,
            cost=money(entry.cost_cents),
            subsidy=money(entry.subsidy_cents),
            at=_at(entry.at),
            actor=entry.actor,
            reason=entry.reason,
            job_id=entry.job_id,
            attempt=entry.attempt,
        )
