"""Funder reports: the store's usage and job starts over a period, as `accounting.reports`
builds them. Facility admins, finance and operators may read them (REPORT_EXPORT).

Usage facts are the usage records that touch the period (build_report clips them to it), with
their project, organisation (and its kind) and the programme of the allocation that paid
("" when none did). A *start* is a job's ADMITTED → RUNNING event in the period; its wait runs
from when the job entered the queue — its submission, or its requeue after a preemption, so a
preempted job's earlier run never counts as waiting — and its programme is that of the
allocation its attempt's reservation was taken from ("" when none).

Each usage fact also carries who funds it: the funding ("eu" | "national") of the call the
paying allocation was awarded from, "national" for an allocation made outside any call, "" when
none paid. An *access* is a proposal of a call with a service level whose award gave access in
the period — at the later of the award and the allocation's start — with its deadline.

Facility GPUs are those of the schedulable nodes now, and promised shares the programmes'
capacity shares now: the store keeps no history of either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from aifactory.accounting.reports import FunderReport, build_report
from aifactory.domain.access_modes import (
    AccessFact,
    AccessMode,
    Funding,
    deadline,
    local_day,
    working_days_between,
)
from aifactory.domain.jobs import JobState
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import MS_PER_S
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import ProposalState
from aifactory.domain.statements import ReportInput, UsageFact, WaitFact
from aifactory.errors import InvalidInput
from aifactory.services import public_holidays
from aifactory.services.principal import Principal
from aifactory.services.programmes import call_terms
from aifactory.store.models import (
    Allocation,
    Call,
    Job,
    JobEvent,
    LedgerEntry,
    Node,
    Organisation,
    Programme,
    Project,
    Proposal,
    UsageRecord,
)


def funder_report(
    session: Session, principal: Principal, *, start: float, end: float, grid_g_per_kwh: float
) -> FunderReport:
    """The report of [start, end)."""
    principal.authorize(Action.REPORT_EXPORT)
    if not start < end:
        raise InvalidInput("the period must end after it starts", field="to")
    data = ReportInput(
        period_start=start,
        period_end=end,
        facility_gpus=_facility_gpus(session),
        grid_g_per_kwh=grid_g_per_kwh,
        promised_share=_promised_shares(session),
        usage=tuple(usage_facts(session, start, end)),
        waits=tuple(wait_facts(session, start, end)),
        access=tuple(access_facts(session, start, end)),
    )
    return build_report(data)


def _facility_gpus(session: Session) -> int:
    stmt = select(func.coalesce(func.sum(Node.gpus), 0)).where(Node.schedulable.is_(True))
    return int(session.scalar(stmt) or 0)


def _promised_shares(session: Session) -> dict[str, float]:
    rows = session.execute(
        select(Programme.name, Programme.capacity_share).order_by(Programme.name)
    )
    return {name: share for name, share in rows}


def usage_facts(session: Session, start: float, end: float) -> Iterator[UsageFact]:
    """Every usage record that may touch [start, end): one of zero length ending at `start`
    counts, so the filter keeps records ending there and leaves the clipping to the report."""
    stmt = (
        select(
            UsageRecord,
            Project.name,
            Organisation.name,
            Organisation.kind,
            Programme.name,
            Allocation.id,
            Call.funding,
        )
        .join(Project, Project.id == UsageRecord.project_id)
        .join(Organisation, Organisation.id == Project.organisation_id)
        .outerjoin(Allocation, Allocation.id == UsageRecord.allocation_id)
        .outerjoin(Programme, Programme.id == Allocation.programme_id)
        .outerjoin(Proposal, Proposal.id == Allocation.proposal_id)
        .outerjoin(Call, Call.id == Proposal.call_id)
        .where(UsageRecord.started_at < end, UsageRecord.ended_at >= start)
        .order_by(UsageRecord.id)
    )
    rows = session.execute(stmt)
    for record, project, organisation, kind, programme, allocation, funding in rows:
        yield UsageFact(
            job_id=record.job_id,
            project=project,
            organisation=organisation,
            org_kind=kind,
            programme=programme or "",
            gpu_model=record.gpu_model,
            gpu_s=record.gpu_ms / MS_PER_S,
            energy_j=record.energy_j,
            energy_measured=record.energy_measured,
            started_at=record.started_at,
            ended_at=record.ended_at,
            funding=funding or (Funding.NATIONAL.value if allocation is not None else ""),
        )


def access_facts(session: Session, start: float, end: float) -> Iterator[AccessFact]:
    """Each award of a call with a service level that gave access in [start, end)."""
    stmt = (
        select(Proposal.submitted_at, Proposal.decided_at, Allocation.valid_from, Call)
        .join(Call, Call.id == Proposal.call_id)
        .join(Allocation, Allocation.proposal_id == Proposal.id)
        .where(
            Proposal.state == ProposalState.AWARDED.value,
            Call.access_mode != AccessMode.REVIEWED.value,
            Proposal.decided_at < end,
            Allocation.valid_to > start,  # access later than its end cannot be in the period
        )
        .order_by(Proposal.id)
    )
    for submitted_at, decided_at, valid_from, call in session.execute(stmt):
        terms = call_terms(call)
        due = deadline(terms, submitted_at, public_holidays.dutch)
        access_at = max(decided_at or submitted_at, valid_from)
        if due is not None and start <= access_at < end:
            days = working_days_between(due.clock_from, local_day(access_at), public_holidays.dutch)
            yield AccessFact(terms.mode, submitted_at, access_at, due.at, days)


@dataclass(frozen=True, slots=True)
class Start:
    job_id: int
    attempt: int
    queued_at: float  # submitted, or requeued after a preemption
    at: float


def wait_facts(session: Session, start: float, end: float) -> Iterator[WaitFact]:
    """One fact per job start in [start, end), with the programme that paid for the attempt."""
    started = _starts_between(start, end)
    programmes = _reserved_programmes(session, started)
    for found in job_starts(session, started):
        if start <= found.at < end:
            programme = programmes.get((found.job_id, found.attempt), "")
            yield WaitFact(programme=programme, wait_s=max(0.0, found.at - found.queued_at))


def _starts_between(start: float, end: float) -> Select[int]:
    """The ids of the jobs that started in [start, end)."""
    return select(JobEvent.job_id).where(
        JobEvent.to_state == JobState.RUNNING.value,
        JobEvent.from_state == JobState.ADMITTED.value,
        JobEvent.at >= start,
        JobEvent.at < end,
    )


def job_starts(session: Session, job_ids: Select[int]) -> Iterator[Start]:
    """Every start of these jobs, each with its attempt and when the job entered the queue."""
    jobs = select(Job.id, Job.submitted_at).where(Job.id.in_(job_ids))
    submitted = {job_id: at for job_id, at in session.execute(jobs)}
    events: dict[int, list[JobEvent]] = defaultdict(list)
    stmt = select(JobEvent).where(JobEvent.job_id.in_(job_ids)).order_by(JobEvent.id)
    for event in session.scalars(stmt):
        events[event.job_id].append(event)
    for job_id in sorted(events):
        yield from _starts_of(job_id, submitted[job_id], events[job_id])


def _starts_of(job_id: int, submitted_at: float, events: Iterable[JobEvent]) -> Iterator[Start]:
    """Each admission begins an attempt (as `jobs.attempts` counts them); a preempted job
    queues again when it goes back to PENDING."""
    attempt, queued_at = 0, submitted_at
    for event in events:
        move = (event.from_state, event.to_state)
        if move == (JobState.PENDING.value, JobState.ADMITTED.value):
            attempt += 1
        elif move == (JobState.PREEMPTED.value, JobState.PENDING.value):
            queued_at = event.at
        elif move == (JobState.ADMITTED.value, JobState.RUNNING.value):
            yield Start(job_id, attempt, queued_at, event.at)


def _reserved_programmes(session: Session, job_ids: Select[int]) -> dict[tuple[int, int], str]:
    """(job, attempt) → the programme of the allocation its reservation came from."""
    stmt = (
        select(LedgerEntry.job_id, LedgerEntry.attempt, Programme.name)
        .join(Allocation, Allocation.id == LedgerEntry.allocation_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .where(LedgerEntry.kind == EntryKind.RESERVE.value, LedgerEntry.job_id.in_(job_ids))
    )
    return {
        (job_id, attempt): name
        for job_id, attempt, name in session.execute(stmt)
        if job_id is not None and attempt is not None
    }
