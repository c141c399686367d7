"""Programmes and calls: the ways to get compute, and the windows in which to ask for it.

Facility admins create and change programmes and open calls; everyone signed in sees both.

Invariants: prices are never negative or absurd (`Tariff.problem`) and are kept as decimal
text, never floats; the capacity shares of all programmes sum to at most 1; a call closes
after it opens and has a positive GPU-hour budget, which its awards never exceed
(services.proposals checks that when it awards).

Access modes (domain.access_modes): a call runs in one mode (reviewed, playground, fast lane,
large scale) with its terms — per-proposal ceiling, allocation length, Large Scale cut-offs and
who funds it (EU or national) — checked when the call is made and stored with their defaults
filled in. A programme's track (science, innovation: free; industry: paid per use) must agree
with its prices: a free track charges nothing after subsidy, a paid one charges something.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.access_modes import (
    AccessMode,
    CallTerms,
    Funding,
    Track,
    terms_problems,
    terms_with_defaults,
)
from aifactory.domain.money import CENT, gpu_hours, gpu_seconds, token_tariff_problem
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import Tariff, Window
from aifactory.domain.tenancy import OrgKind
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.store.models import Allocation, Call, Programme, Proposal

# GPU-seconds are INTEGER columns (at most 2³¹ − 1): one amount of GPU-hours may not exceed this.
MAX_GPU_HOURS = (2**31 - 1) // 3600
MAX_CALL_GPU_HOURS = 1e9
MAX_PRICE_PLACES = 6  # € 0.000001: finer than any tariff, short enough for the text column
MAX_STARTER_DAYS = 3660
CAPACITY_SLACK = 1e-9  # shares are floats: 0.1 + 0.2 + 0.7 must still fit in 1


@dataclass(frozen=True, slots=True)
class ProgrammeSpec:
    """Everything about a programme but its name (which never changes)."""

    title: str
    eligible_kinds: tuple[OrgKind, ...]
    gpu_tariffs: Mapping[str, Decimal]
    capacity_share: float
    cpu_tariff: Decimal = Decimal(0)
    subsidy_pct: int = 0
    priority_weight: int = 0
    preemptible_default: bool = False
    max_gpus_per_job: int | None = None
    starter_gpu_hours: float = 0.0
    starter_days: int = 30
    prompt_token_tariff: Decimal = Decimal(0)  # € per million tokens through the gateway
    completion_token_tariff: Decimal = Decimal(0)
    track: Track | None = None  # None: no AI Factory track


@dataclass(frozen=True, slots=True)
class ProgrammeView:
    """A programme's terms as stored: tariffs are decimal text by GPU model ("*": any other)."""

    name: str
    title: str
    eligible_kinds: list[str]
    gpu_tariffs: dict[str, str]
    cpu_tariff: str
    subsidy_pct: int
    priority_weight: int
    preemptible_default: bool
    max_gpus_per_job: int | None
    capacity_share: float
    starter_gpu_hours: float
    starter_days: int
    created_at: float
    prompt_token_tariff: str  # € per million tokens
    completion_token_tariff: str
    track: str | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A call's own fields (CallView adds its programme's name and what it has awarded)."""

    id: int
    name: str
    title: str
    opens_at: float
    closes_at: float
    budget_gpu_hours: float
    created_at: float
    terms: CallTerms = field(default_factory=CallTerms)


@dataclass(frozen=True, slots=True)
class CallView:
    call: CallRecord
    programme: str
    awarded_gpu_s: int
    open_now: bool

    @property
    def budget_gpu_s(self) -> int:
        return gpu_seconds(self.call.budget_gpu_hours)

    @property
    def awarded_gpu_hours(self) -> float:
        return gpu_hours(self.awarded_gpu_s)

    @property
    def left_gpu_hours(self) -> float:
        return gpu_hours(max(self.budget_gpu_s - self.awarded_gpu_s, 0))


def create_programme(
    session: Session, principal: Principal, *, name: str, spec: ProgrammeSpec, now: float
) -> ProgrammeView:
    principal.authorize(Action.PROGRAMME_EDIT)
    _check_spec(spec)
    _check_capacity(session, spec.capacity_share, name=name)
    programme = Programme(name=name, created_at=now)
    _apply(programme, spec)
    insert_unique(session, programme, f"a programme named {name!r} already exists", "name")
    audit.record(
        session,
        actor=principal.name,
        action="programme.create",
        object=f"programme:{name}",
        at=now,
        source=principal.source,
        detail=_terms(programme),
    )
    return _programme_view(programme)


def update_programme(
    session: Session, principal: Principal, *, name: str, spec: ProgrammeSpec, now: float
) -> ProgrammeView:
    """Replace everything but the name; allocations already made keep their programme."""
    principal.authorize(Action.PROGRAMME_EDIT)
    programme = programme_by_name(session, name)
    _check_spec(spec)
    _check_capacity(session, spec.capacity_share, name=name)
    _apply(programme, spec)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="programme.update",
        object=f"programme:{name}",
        at=now,
        source=principal.source,
        detail=_terms(programme),
    )
    return _programme_view(programme)


def _terms(programme: Programme) -> dict[str, Any]:
    """A programme's terms as its audit events record them."""
    return {
        "eligible_kinds": programme.eligible_kinds,
        "gpu_tariffs": programme.gpu_tariffs,
        "cpu_tariff": programme.cpu_tariff,
        "prompt_token_tariff": programme.prompt_token_tariff,
        "completion_token_tariff": programme.completion_token_tariff,
        "subsidy_pct": programme.subsidy_pct,
        "priority_weight": programme.priority_weight,
        "capacity_share": programme.capacity_share,
        "max_gpus_per_job": programme.max_gpus_per_job,
        "track": programme.track,
    }


def list_programmes(session: Session, principal: Principal) -> list[ProgrammeView]:
    del principal  # every signed-in user may see what programmes there are
    return [_programme_view(p) for p in session.scalars(select(Programme).order_by(Programme.id))]


def _programme_view(programme: Programme) -> ProgrammeView:
    return ProgrammeView(
        name=programme.name,
        title=programme.title,
        eligible_kinds=list(programme.eligible_kinds),
        gpu_tariffs=dict(programme.gpu_tariffs),
        cpu_tariff=programme.cpu_tariff,
        subsidy_pct=programme.subsidy_pct,
        priority_weight=programme.priority_weight,
        preemptible_default=programme.preemptible_default,
        max_gpus_per_job=programme.max_gpus_per_job,
        capacity_share=programme.capacity_share,
        starter_gpu_hours=programme.starter_gpu_hours,
        starter_days=programme.starter_days,
        created_at=programme.created_at,
        prompt_token_tariff=programme.prompt_token_tariff,
        completion_token_tariff=programme.completion_token_tariff,
        track=programme.track,
    )


def programme_by_name(session: Session, name: str, *, field: str = "programme") -> Programme:
    found = session.scalars(select(Programme).where(Programme.name == no_nul(name))).first()
    if found is None:
        raise NotFound(f"no programme named {name!r}", field=field)
    return found


def _apply(programme: Programme, spec: ProgrammeSpec) -> None:
    programme.title = spec.title.strip()
    programme.eligible_kinds = list(dict.fromkeys(k.value for k in spec.eligible_kinds))
    programme.gpu_tariffs = {model: price_text(p) for model, p in spec.gpu_tariffs.items()}
    programme.cpu_tariff = price_text(spec.cpu_tariff)
    programme.prompt_token_tariff = price_text(spec.prompt_token_tariff)
    programme.completion_token_tariff = price_text(spec.completion_token_tariff)
    programme.subsidy_pct = spec.subsidy_pct
    programme.priority_weight = spec.priority_weight
    programme.preemptible_default = spec.preemptible_default
    programme.max_gpus_per_job = spec.max_gpus_per_job
    programme.capacity_share = spec.capacity_share
    programme.starter_gpu_hours = spec.starter_gpu_hours
    programme.starter_days = spec.starter_days
    programme.track = spec.track.value if spec.track is not None else None


def price_text(price: Decimal) -> str:
    """A price as plain decimal text with at least two decimals: "2.50", "0.0125", "1000.00"
    (never "1E+3" or "-0")."""
    value = (price + 0).normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(CENT)
    return format(value, "f")


def _check_spec(spec: ProgrammeSpec) -> None:
    for field_name, reason in _spec_problems(spec):
        raise InvalidInput(reason, field=field_name)


def _spec_problems(spec: ProgrammeSpec) -> Iterator[tuple[str, str]]:
    """(field, reason) for each rule the spec breaks, in the order the fields are read."""
    rules = [
        ("title", bool(spec.title.strip()), "must not be empty"),
        ("eligible_kinds", bool(spec.eligible_kinds), "name at least one organisation kind"),
    ]
    yield from ((f, reason) for f, ok, reason in rules if not ok)
    yield from _tariff_problems(spec)
    yield from _limit_problems(spec)
    yield from _track_problems(spec)


def _tariff_problems(spec: ProgrammeSpec) -> Iterator[tuple[str, str]]:
    problem = Tariff(dict(spec.gpu_tariffs), spec.cpu_tariff).problem()
    if problem is not None:
        where, reason = problem
        yield ("gpu_tariffs" if where == "tariffs" else where), reason
    for model, price in spec.gpu_tariffs.items():
        if not model.strip() or len(model) > 64:
            yield "gpu_tariffs", f"GPU model {model!r} must be 1–64 characters"
        if _too_fine(price):
            yield "gpu_tariffs", f"{price} has more than {MAX_PRICE_PLACES} decimal places"
    if _too_fine(spec.cpu_tariff):
        yield "cpu_tariff", f"{spec.cpu_tariff} has more than {MAX_PRICE_PLACES} decimal places"
    for name in ("prompt_token_tariff", "completion_token_tariff"):
        wrong = token_tariff_problem(getattr(spec, name))
        if wrong is not None:
            yield name, wrong


def _too_fine(price: Decimal) -> bool:
    exponent = price.normalize().as_tuple().exponent
    return isinstance(exponent, int) and exponent < -MAX_PRICE_PLACES


def _limit_problems(spec: ProgrammeSpec) -> Iterator[tuple[str, str]]:
    share, starter = spec.capacity_share, spec.starter_gpu_hours
    rules = [
        ("subsidy_pct", 0 <= spec.subsidy_pct <= 100, "must be 0–100"),
        ("priority_weight", -1000 <= spec.priority_weight <= 1000, "must be −1000–1000"),
        (
            "max_gpus_per_job",
            spec.max_gpus_per_job is None or 1 <= spec.max_gpus_per_job <= 1_000_000,
            "must be at least 1, or left out for no limit",
        ),
        ("capacity_share", math.isfinite(share) and 0 < share <= 1, "must be above 0, at most 1"),
        (
            "starter_gpu_hours",
            math.isfinite(starter) and 0 <= starter <= MAX_GPU_HOURS,
            f"must be 0–{MAX_GPU_HOURS} (0: no automatic starter allocations)",
        ),
        ("starter_days", 1 <= spec.starter_days <= MAX_STARTER_DAYS, "must be 1–3660"),
    ]
    yield from ((f, reason) for f, ok, reason in rules if not ok)


def _track_problems(spec: ProgrammeSpec) -> Iterator[tuple[str, str]]:
    """A free track charges nothing after subsidy; a paid one charges something."""
    if spec.track is None:
        return
    charges = spec.subsidy_pct < 100 and any(p > 0 for p in spec.gpu_tariffs.values())
    if spec.track.free and charges:
        yield "track", f"the {spec.track} track is free: set subsidy_pct 100 or GPU prices 0"
    if not spec.track.free and not charges:
        yield "track", f"the {spec.track} track pays per use: it needs a GPU price to charge"


def _check_capacity(session: Session, share: float, *, name: str) -> None:
    """The other programmes' shares plus this one's may not exceed the whole facility."""
    others = session.scalar(
        select(func.coalesce(func.sum(Programme.capacity_share), 0.0)).where(Programme.name != name)
    )
    taken = float(others or 0.0)
    if taken + share > 1 + CAPACITY_SLACK:
        left = max(1 - taken, 0.0)
        raise InvalidInput(
            f"the other programmes hold {taken:g} of the capacity; at most {left:g} is left",
            field="capacity_share",
        )


def create_call(
    session: Session,
    principal: Principal,
    *,
    name: str,
    programme: str,
    title: str,
    opens_at: float,
    closes_at: float,
    budget_gpu_hours: float,
    terms: CallTerms = CallTerms(),
    now: float,
) -> CallView:
    """Open a call; `terms` say its access mode (default: a plain reviewed call)."""
    principal.authorize(Action.CALL_CREATE)
    found = programme_by_name(session, programme)
    _check_call(title, Window(opens_at, closes_at), budget_gpu_hours)
    for field_name, reason in terms_problems(terms, budget_gpu_hours):
        raise InvalidInput(reason, field=field_name)
    terms = terms_with_defaults(terms)
    call = Call(
        name=name,
        programme_id=found.id,
        title=title.strip(),
        opens_at=opens_at,
        closes_at=closes_at,
        budget_gpu_hours=budget_gpu_hours,
        created_at=now,
    )
    _store_terms(call, terms)
    insert_unique(session, call, f"a call named {name!r} already exists", "name")
    audit.record(
        session,
        actor=principal.name,
        action="call.create",
        object=f"call:{name}",
        at=now,
        source=principal.source,
        detail={
            "programme": found.name,
            "budget_gpu_hours": budget_gpu_hours,
            "access_mode": call.access_mode,
            "ceiling_gpu_hours": call.ceiling_gpu_hours,
            "funding": call.funding,
        },
    )
    return CallView(_call_record(call), found.name, 0, call_is_open(call, now))


def _check_call(title: str, window: Window, budget_gpu_hours: float) -> None:
    if not title.strip():
        raise InvalidInput("must not be empty", field="title")
    problem = window.problem("the call")
    if problem is not None:
        raise InvalidInput(f"{problem}: closes_at must be after opens_at", field="closes_at")
    budget = budget_gpu_hours
    if not (math.isfinite(budget) and 0 < budget <= MAX_CALL_GPU_HOURS):
        raise InvalidInput(
            f"must be above 0 and at most {MAX_CALL_GPU_HOURS:g} GPU-hours",
            field="budget_gpu_hours",
        )


def list_calls(session: Session, principal: Principal, *, now: float) -> list[CallView]:
    del principal  # every signed-in user may see the calls, open or not
    rows = session.execute(
        select(Call, Programme.name)
        .join(Programme, Programme.id == Call.programme_id)
        .order_by(Call.id)
    ).all()
    awarded = awarded_by_call(session, [call.id for call, _ in rows])
    return [
        CallView(_call_record(call), programme, awarded.get(call.id, 0), call_is_open(call, now))
        for call, programme in rows
    ]


def _call_record(call: Call) -> CallRecord:
    return CallRecord(
        id=call.id,
        name=call.name,
        title=call.title,
        opens_at=call.opens_at,
        closes_at=call.closes_at,
        budget_gpu_hours=call.budget_gpu_hours,
        created_at=call.created_at,
        terms=call_terms(call),
    )


def _store_terms(call: Call, terms: CallTerms) -> None:
    call.access_mode = terms.mode.value
    call.ceiling_gpu_hours = terms.ceiling_gpu_hours
    call.min_days, call.max_days = terms.min_days, terms.max_days
    call.cutoff_days = list(terms.cutoff_days) or None
    call.funding = terms.funding.value


def call_terms(call: Call) -> CallTerms:
    """A stored call's terms (a call made before access modes is a plain reviewed one)."""
    return CallTerms(
        mode=AccessMode(call.access_mode or AccessMode.REVIEWED),
        ceiling_gpu_hours=call.ceiling_gpu_hours,
        min_days=call.min_days,
        max_days=call.max_days,
        cutoff_days=tuple(call.cutoff_days or ()),
        funding=Funding(call.funding or Funding.NATIONAL),
    )


def call_by_name(session: Session, name: str, *, field: str = "call") -> Call:
    found = session.scalars(select(Call).where(Call.name == no_nul(name))).first()
    if found is None:
        raise NotFound(f"no call named {name!r}", field=field)
    return found


def call_is_open(call: Call, now: float) -> bool:
    return Window(call.opens_at, call.closes_at).contains(now)


def awarded_by_call(session: Session, call_ids: list[int]) -> dict[int, int]:
    """GPU-seconds awarded so far from each call's proposals (the awards, not adjustments)."""
    if not call_ids:
        return {}
    stmt = (
        select(Proposal.call_id, func.sum(Allocation.award_gpu_s))
        .join(Allocation, Allocation.proposal_id == Proposal.id)
        .where(Proposal.call_id.in_(call_ids))
        .group_by(Proposal.call_id)
    )
    return {call_id: int(total or 0) for call_id, total in session.execute(stmt)}


def insert_unique(session: Session, row: object, message: str, field: str) -> None:
    """Insert `row`; a name already taken is a Conflict naming `field`, not a 500."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(message, field=field) from exc


def hours_text(gpu_s: float) -> str:
    """GPU-seconds as GPU-hours for a message: "12.5", "0.01", "3"."""
    return f"{gpu_hours(gpu_s):.2f}".rstrip("0").rstrip(".")


def time_text(at: float) -> str:
    """A moment for a message: "2026-05-01T12:00+00:00"."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="minutes")


def no_nul(name: str) -> str:
    """PostgreSQL refuses NUL even in a query, and no name holds one: look up "" (no match)."""
    return "" if "\x00" in name else name
