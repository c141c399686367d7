"""Access modes: how a call hands out compute, and by when it owes an answer.

Vocabulary (EuroHPC AI Factories): a call runs in one *access mode*. *Playground* is first
come, first served: a request within the call's per-proposal *ceiling* and its remaining
budget is awarded at once. *Fast Lane* is a light review of requests up to 50,000 GPU-hours.
*Large Scale* is peer reviewed in batches: proposals wait for the next *cut-off* (by default
the 1st and the 15th of each month). *Reviewed* is a plain call with no service level — every
call made before access modes existed.

Each mode has a *service level*: access (or a decision) within so many *working days*,
counted from the day of submission — for Large Scale from its cut-off day. Working days are
Monday to Friday except the public holidays the caller gives (`Holidays`: the services pass the
Dutch ones, from the `holidays` package: King's Day, the lustrum Liberation Days…); calendar
days are those of Europe/Amsterdam. A
*deadline* is the end (local midnight) of its last working day. A proposal is *late* when its
answer came — or, still open, `now` is — after its deadline; a withdrawn one never is.

Pure: no I/O and no clock; moments are UNIX seconds.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A year's public holidays (services.public_holidays.dutch): a list kept by others, so passed in.
Holidays = Callable[[int], Collection[date]]
TIMEZONE = ZoneInfo("Europe/Amsterdam")
FAST_LANE_MAX_GPU_HOURS = 50_000.0
DEFAULT_CUTOFF_DAYS = (1, 15)
MAX_CUTOFF_DAY = 28  # every month has it
DAY_S = 86400


class AccessMode(enum.StrEnum):
    REVIEWED = "reviewed"
    PLAYGROUND = "playground"
    FAST_LANE = "fast_lane"
    LARGE_SCALE = "large_scale"


class Funding(enum.StrEnum):
    """Who pays for a call's capacity: the EU (EuroHPC JU) or the national co-funders."""

    EU = "eu"
    NATIONAL = "national"


class Track(enum.StrEnum):
    """Who a programme serves, and so whether access is free or paid per use."""

    SCIENCE = "science"  # academics: free
    INNOVATION = "innovation"  # startups and SMEs: free
    INDUSTRY = "industry"  # other industry: pay per use

    @property
    def free(self) -> bool:
        return self is not Track.INDUSTRY


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    """What a mode promises: an answer within `working_days` (None: no promise) and an
    allocation lasting `min_days`–`max_days` (None: any)."""

    working_days: int | None
    min_days: int | None
    max_days: int | None
    reviewed: bool
    max_ceiling_gpu_hours: float | None = None
    cutoffs: bool = False


SERVICE_LEVELS: dict[AccessMode, ServiceLevel] = {
    AccessMode.REVIEWED: ServiceLevel(None, None, None, reviewed=True),
    AccessMode.PLAYGROUND: ServiceLevel(2, 30, 90, reviewed=False),
    AccessMode.FAST_LANE: ServiceLevel(
        4, 30, 90, reviewed=True, max_ceiling_gpu_hours=FAST_LANE_MAX_GPU_HOURS
    ),
    AccessMode.LARGE_SCALE: ServiceLevel(10, 90, 365, reviewed=True, cutoffs=True),
}


# -- a call's terms ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallTerms:
    """How one call hands out compute. Unset durations take the mode's bounds."""

    mode: AccessMode = AccessMode.REVIEWED
    ceiling_gpu_hours: float | None = None  # per proposal; None: up to the call's budget
    min_days: int | None = None
    max_days: int | None = None
    cutoff_days: tuple[int, ...] = ()  # Large Scale only; () there: DEFAULT_CUTOFF_DAYS
    funding: Funding = Funding.NATIONAL

    @property
    def level(self) -> ServiceLevel:
        return SERVICE_LEVELS[self.mode]

    def days(self) -> tuple[int | None, int | None]:
        """The allowed allocation length in days (min, max), either None where unbounded."""
        level = self.level
        low = self.min_days if self.min_days is not None else level.min_days
        high = self.max_days if self.max_days is not None else level.max_days
        return low, high

    def cutoffs(self) -> tuple[int, ...]:
        if not self.level.cutoffs:
            return ()
        return tuple(sorted(set(self.cutoff_days))) or DEFAULT_CUTOFF_DAYS


def terms_with_defaults(terms: CallTerms) -> CallTerms:
    """The terms as stored: Fast Lane's ceiling defaults to its maximum, cut-offs to the
    defaults, durations to the mode's bounds."""
    ceiling = terms.ceiling_gpu_hours
    if ceiling is None and terms.mode is AccessMode.FAST_LANE:
        ceiling = FAST_LANE_MAX_GPU_HOURS
    low, high = terms.days()
    return CallTerms(terms.mode, ceiling, low, high, terms.cutoffs(), terms.funding)


def terms_problems(terms: CallTerms, budget_gpu_hours: float) -> Iterator[tuple[str, str]]:
    """(field, reason) for each rule the terms break."""
    yield from _ceiling_problems(terms, budget_gpu_hours)
    yield from _duration_problems(terms)
    if terms.cutoff_days and not terms.level.cutoffs:
        yield "cutoff_days", f"only a {AccessMode.LARGE_SCALE} call has cut-offs"
    if any(not 1 <= day <= MAX_CUTOFF_DAY for day in terms.cutoff_days):
        yield "cutoff_days", f"days of the month must be 1–{MAX_CUTOFF_DAY}"


def _ceiling_problems(terms: CallTerms, budget: float) -> Iterator[tuple[str, str]]:
    ceiling, top = terms.ceiling_gpu_hours, terms.level.max_ceiling_gpu_hours
    if ceiling is None:
        if terms.mode is AccessMode.PLAYGROUND:
            yield "ceiling_gpu_hours", "a playground call needs a per-proposal ceiling"
        return
    if not (math.isfinite(ceiling) and 0 < ceiling <= budget):
        yield "ceiling_gpu_hours", f"must be above 0 and at most the call's budget, {budget:g}"
    elif top is not None and ceiling > top:
        yield "ceiling_gpu_hours", f"a {terms.mode} call awards at most {top:g} GPU-h a proposal"


def _duration_problems(terms: CallTerms) -> Iterator[tuple[str, str]]:
    level = terms.level
    low, high = terms.days()
    floor = level.min_days if level.min_days is not None else 1
    top = level.max_days if level.max_days is not None else 3660
    for name, days in (("min_days", terms.min_days), ("max_days", terms.max_days)):
        if days is not None and not floor <= days <= top:
            yield name, f"a {terms.mode} call's allocations last {floor}–{top} days"
    if low is not None and high is not None and low > high:
        yield "max_days", "must be at least min_days"


def duration_problem(terms: CallTerms, days: float) -> str | None:
    """Why an allocation of `days` does not fit the call, or None."""
    low, high = terms.days()
    if (low is None or days >= low) and (high is None or days <= high):
        return None
    return f"a {terms.mode} call's allocations last {low or 0}–{high or '∞'} days, not {days:g}"


# -- working days and deadlines ---------------------------------------------------------------


def is_working_day(day: date, holidays: Holidays) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def local_day(at: float) -> date:
    """The calendar day in Amsterdam of a moment."""
    return datetime.fromtimestamp(at, TIMEZONE).date()


def end_of_day(day: date) -> float:
    """The moment a local day ends: the next day's local midnight."""
    return datetime.combine(day + timedelta(days=1), time(), TIMEZONE).timestamp()


def due_day(deadline_at: float) -> date:
    """The last local day before a deadline moment: the day a person reads as "due on"."""
    return local_day(deadline_at - 1)


def add_working_days(day: date, count: int, holidays: Holidays) -> date:
    """The `count`-th working day after `day` (`day` itself when count is 0)."""
    found = day
    while count > 0:
        found += timedelta(days=1)
        count -= is_working_day(found, holidays)
    return found


def working_days_between(start: date, end: date, holidays: Holidays) -> int:
    """Working days after `start` up to and including `end` (0 when end ≤ start)."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day, holidays)
    return count


def next_cutoff(at: float, cutoff_days: Sequence[int]) -> date:
    """The first cut-off day on or after the local day of `at`: a proposal submitted on a
    cut-off day is in that day's batch."""
    day = local_day(at)
    days = sorted(set(cutoff_days)) or list(DEFAULT_CUTOFF_DAYS)
    for month_ahead in range(2):
        first = _add_months(day.replace(day=1), month_ahead)
        for cutoff in days:
            candidate = first.replace(day=cutoff)
            if candidate >= day:
                return candidate
    raise AssertionError("a cut-off of day ≤ 28 comes within two months")


def _add_months(first: date, months: int) -> date:
    index = first.month - 1 + months
    return date(first.year + index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a proposal's answer is due: the end of local working day `day`, from the day its
    clock started (the submission's, or the cut-off's for Large Scale)."""

    clock_from: date
    day: date
    at: float


def deadline(terms: CallTerms, submitted_at: float, holidays: Holidays) -> Deadline | None:
    """The proposal's deadline under the call's service level; None where it has none."""
    working_days = terms.level.working_days
    if working_days is None:
        return None
    start = local_day(submitted_at)
    if terms.level.cutoffs:
        start = next_cutoff(submitted_at, terms.cutoffs())
    due = add_working_days(start, working_days, holidays)
    return Deadline(start, due, end_of_day(due))


def is_late(deadline_at: float | None, answered_at: float | None, now: float) -> bool:
    """Answered after the deadline, or still unanswered past it (None: no deadline)."""
    if deadline_at is None:
        return False
    return (answered_at if answered_at is not None else now) >= deadline_at


# -- Playground: first come, first served ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutoAward:
    """A Playground award: the request, from submission for `days`."""

    gpu_hours: float
    valid_from: float
    valid_to: float


def playground_award(
    terms: CallTerms, *, requested_gpu_hours: float, left_gpu_hours: float, days: int, now: float
) -> AutoAward | tuple[str, str]:
    """The award a Playground request gets at once, or (field, reason) why it gets none.

    First come, first served: a request within the ceiling is awarded whole while the call has
    that much left; one over the ceiling belongs in a reviewed mode, and once the budget is
    gone, later requests are refused rather than queued.
    """
    ceiling = terms.ceiling_gpu_hours
    if ceiling is not None and requested_gpu_hours > ceiling:
        return "requested_gpu_hours", (
            f"a playground call awards at most {ceiling:g} GPU-h a proposal; "
            "ask a fast lane or large scale call for more"
        )
    if requested_gpu_hours > left_gpu_hours:
        return "requested_gpu_hours", f"the call has {max(left_gpu_hours, 0):g} GPU-h left"
    problem = duration_problem(terms, days)
    if problem is not None:
        return "requested_days", problem
    return AutoAward(requested_gpu_hours, now, now + days * DAY_S)


# -- time to access, for the funder report ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessFact:
    """One proposal that got access: its mode, when access came, its deadline, and the working
    days from its clock's start (the cut-off for Large Scale) to access."""

    mode: AccessMode
    submitted_at: float
    access_at: float
    deadline_at: float
    working_days: int


@dataclass(frozen=True, slots=True)
class TimeToAccess:
    """How one mode kept its service level over a period."""

    service_days: int
    proposals: int
    within: int
    median_working_days: float

    @property
    def share_within(self) -> float:
        return self.within / self.proposals if self.proposals else 0.0


def time_to_access(facts: Iterable[AccessFact]) -> dict[str, TimeToAccess]:
    """Per mode (those with a service level), ordered by name. Working days are counted
    from the clock's start, so they compare with the service level directly."""
    by_mode: dict[AccessMode, list[AccessFact]] = {}
    for fact in facts:
        by_mode.setdefault(fact.mode, []).append(fact)
    found: dict[str, TimeToAccess] = {}
    for mode in sorted(by_mode):
        service_days = SERVICE_LEVELS[mode].working_days
        if service_days is None:
            continue
        group = by_mode[mode]
        days = [f.working_days for f in group]
        within = sum(1 for f in group if f.access_at < f.deadline_at)
        found[mode.value] = TimeToAccess(
            service_days, len(group), within, float(statistics.median(days))
        )
    return found
