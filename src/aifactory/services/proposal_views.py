"""What a caller sees of proposals: each proposal with its names, the reviews they may see and
the allocation it became (services.proposals checks who sees the proposal at all).

Reviews (PROPOSAL_READ, on top of the matrix): reviewer names are shown to those who assign
reviewers (PROPOSAL_ASSIGN) and to a reviewer for their own review; the applicant's members see
the scores and comments of finished reviews, without names; a reviewer sees no one else's.

Service level (domain.access_modes): each view carries its call's access mode and the
proposal's deadline; it is *answered* when rejected, or when its award gives access (the later
of the award and the allocation's start). `late(now)` says whether the answer came, or is still
missing, after the deadline; a withdrawn proposal is never late.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.access_modes import deadline, is_late
from aifactory.domain.permissions import Action, Role, allowed
from aifactory.domain.programmes import ProposalState
from aifactory.services import public_holidays
from aifactory.services.principal import Principal
from aifactory.services.programmes import call_terms
from aifactory.store.models import Allocation, Call, Programme, Project, Proposal, Review, User


@dataclass(frozen=True, slots=True)
class ReviewView:
    reviewer: str | None  # None where the caller may not know who reviewed
    score: int | None
    comment: str | None
    assigned_at: float
    reviewed_at: float | None


@dataclass(frozen=True, slots=True)
class ProposalRecord:
    """A proposal's own fields as read (ProposalView adds the names and the reviews)."""

    id: int
    project_id: int
    title: str
    abstract: str
    justification: str
    requested_gpu_hours: float
    gpu_model: str | None
    planned_datasets: list[str]
    requested_days: int | None
    state: str  # a ProposalState value
    submitted_at: float
    decided_at: float | None
    decision_note: str | None


@dataclass(frozen=True, slots=True)
class ProposalView:
    proposal: ProposalRecord
    call: str
    programme: str
    project: str
    submitted_by: str
    reviews: tuple[ReviewView, ...]
    allocation: str | None  # the allocation it was awarded as
    mode: str = "reviewed"  # its call's access mode
    deadline: float | None = None  # when its answer is due; None: no service level
    answered_at: float | None = None  # rejected, or access given; None while open

    def late(self, now: float) -> bool:
        if self.proposal.state == ProposalState.WITHDRAWN.value:
            return False
        return is_late(self.deadline, self.answered_at, now)


def reads_all_of(principal: Principal, project_id: int | None) -> bool:
    """PROPOSAL_READ through a role other than reviewer, whose grant reaches only the proposals
    assigned to them: every proposal of the project (None: of every project)."""
    return allowed(Action.PROPOSAL_READ, principal.roles(project_id) - {Role.REVIEWER})


def view_of(session: Session, principal: Principal, proposal: Proposal) -> ProposalView:
    return views_of(session, principal, [proposal])[0]


def views_of(
    session: Session, principal: Principal, proposals: list[Proposal]
) -> list[ProposalView]:
    """Each proposal with its names, the reviews the caller may see and its allocation."""
    ids = [p.id for p in proposals]
    if not ids:
        return []
    names = {
        row[0]: row[1:]
        for row in session.execute(
            select(Proposal.id, Call, Programme.name, Project.name, User.name)
            .join(Call, Call.id == Proposal.call_id)
            .join(Programme, Programme.id == Call.programme_id)
            .join(Project, Project.id == Proposal.project_id)
            .join(User, User.id == Proposal.submitted_by)
            .where(Proposal.id.in_(ids))
        )
    }
    reviews = _reviews(session, principal, proposals)
    stmt = select(Allocation.proposal_id, Allocation.name, Allocation.valid_from).where(
        Allocation.proposal_id.in_(ids)
    )
    awarded = {pid: (name, start) for pid, name, start in session.execute(stmt)}
    return [
        _view(p, *names[p.id], reviews.get(p.id, ()), *awarded.get(p.id, (None, None)))
        for p in proposals
    ]


def _view(
    proposal: Proposal,
    call: Call,
    programme: str,
    project: str,
    submitted_by: str,
    reviews: tuple[ReviewView, ...],
    allocation: str | None,
    allocation_starts: float | None,
) -> ProposalView:
    terms = call_terms(call)
    due = deadline(terms, proposal.submitted_at, public_holidays.dutch)
    return ProposalView(
        proposal=_record(proposal),
        call=call.name,
        programme=programme,
        project=project,
        submitted_by=submitted_by,
        reviews=reviews,
        allocation=allocation,
        mode=terms.mode.value,
        deadline=due.at if due is not None else None,
        answered_at=_answered_at(proposal, allocation_starts),
    )


def _answered_at(proposal: Proposal, allocation_starts: float | None) -> float | None:
    """When the applicant got their answer: access for an award, the decision otherwise."""
    if proposal.decided_at is None:
        return None
    if allocation_starts is None:
        return proposal.decided_at
    return max(proposal.decided_at, allocation_starts)


def _record(proposal: Proposal) -> ProposalRecord:
    return ProposalRecord(
        id=proposal.id,
        project_id=proposal.project_id,
        title=proposal.title,
        abstract=proposal.abstract,
        justification=proposal.justification,
        requested_gpu_hours=proposal.requested_gpu_hours,
        gpu_model=proposal.gpu_model,
        planned_datasets=list(proposal.planned_datasets),
        requested_days=proposal.requested_days,
        state=proposal.state,
        submitted_at=proposal.submitted_at,
        decided_at=proposal.decided_at,
        decision_note=proposal.decision_note,
    )


def _reviews(
    session: Session, principal: Principal, proposals: list[Proposal]
) -> dict[int, tuple[ReviewView, ...]]:
    projects = {p.id: p.project_id for p in proposals}
    stmt = (
        select(Review, User.name)
        .join(User, User.id == Review.reviewer_id)
        .where(Review.proposal_id.in_(list(projects)))
        .order_by(Review.id)
    )
    shown: dict[int, list[ReviewView]] = {}
    for row, reviewer in session.execute(stmt):
        view = _shown(principal, projects[row.proposal_id], row, reviewer)
        if view is not None:
            shown.setdefault(row.proposal_id, []).append(view)
    return {pid: tuple(views) for pid, views in shown.items()}


def _shown(principal: Principal, project_id: int, row: Review, reviewer: str) -> ReviewView | None:
    """What the caller may see of one review (see the module's rules), or None."""
    own = row.reviewer_id == principal.user_id
    if own or principal.may(Action.PROPOSAL_ASSIGN, project_id):
        name: str | None = reviewer
    elif reads_all_of(principal, project_id) and row.score is not None:
        name = None
    else:
        return None
    return ReviewView(name, row.score, row.comment, row.assigned_at, row.reviewed_at)
