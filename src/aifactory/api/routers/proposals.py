"""Proposals: submit to an open call, assign reviewers, review, and award or reject."""

from __future__ import annotations

from fastapi import APIRouter

from aifactory.api.accounting_schemas import (
    AllocationOut,
    AwardBody,
    ProposalOut,
    ProposalSubmit,
    RejectBody,
    ReviewerAssign,
    ReviewSubmit,
)
from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.domain.programmes import ProposalState
from aifactory.faces.inputs import ProposalId
from aifactory.services import proposals as service

router = APIRouter(prefix="/proposals", tags=["proposals"])


@router.post("", status_code=201, response_model=ProposalOut)
def submit_proposal(
    body: ProposalSubmit, session: WriteSession, user: CurrentUser, now: Now
) -> ProposalOut:
    """Ask an open call for GPU-hours; a small first request may be awarded at once."""
    submitted = service.submit_proposal(
        session,
        user,
        call=body.call,
        project=body.project,
        title=body.title,
        abstract=body.abstract,
        justification=body.justification,
        requested_gpu_hours=body.requested_gpu_hours,
        gpu_model=body.gpu_model,
        planned_datasets=body.planned_datasets,
        requested_days=body.requested_days,
        now=now,
    )
    return ProposalOut.of(submitted, now)


@router.get("", response_model=list[ProposalOut])
def list_proposals(
    session: ReadSession,
    user: CurrentUser,
    now: Now,
    call: str | None = None,
    project: str | None = None,
    state: ProposalState | None = None,
) -> list[ProposalOut]:
    found = service.list_proposals(session, user, call=call, project=project, state=state)
    return [ProposalOut.of(p, now) for p in found]


@router.get("/{proposal_id}", response_model=ProposalOut)
def show_proposal(
    proposal_id: ProposalId, session: ReadSession, user: CurrentUser, now: Now
) -> ProposalOut:
    return ProposalOut.of(service.get_proposal(session, user, proposal_id), now)


@router.post("/{proposal_id}/reviewers", status_code=201, response_model=ProposalOut)
def assign_reviewer(
    proposal_id: ProposalId,
    body: ReviewerAssign,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
) -> ProposalOut:
    assigned = service.assign_reviewer(
        session, user, proposal_id=proposal_id, reviewer=body.reviewer, now=now
    )
    return ProposalOut.of(assigned, now)


@router.post("/{proposal_id}/reviews", response_model=ProposalOut)
def review(
    proposal_id: ProposalId, body: ReviewSubmit, session: WriteSession, user: CurrentUser, now: Now
) -> ProposalOut:
    """The assigned reviewer's score and comment; sending again replaces them."""
    reviewed = service.review(
        session, user, proposal_id=proposal_id, score=body.score, comment=body.comment, now=now
    )
    return ProposalOut.of(reviewed, now)


@router.post("/{proposal_id}/award", status_code=201, response_model=AllocationOut)
def award(
    proposal_id: ProposalId, body: AwardBody, session: WriteSession, user: CurrentUser, now: Now
) -> AllocationOut:
    """Award GPU-hours from the call's budget: the proposal becomes an allocation."""
    allocation = service.award(
        session,
        user,
        proposal_id=proposal_id,
        gpu_hours=body.gpu_hours,
        valid_from=body.valid_from.timestamp(),
        valid_to=body.valid_to.timestamp(),
        quota_gpus=body.quota_gpus,
        gpu_model=body.gpu_model,
        note=body.note,
        now=now,
    )
    return AllocationOut.of(allocation)


@router.post("/{proposal_id}/reject", response_model=ProposalOut)
def reject(
    proposal_id: ProposalId, body: RejectBody, session: WriteSession, user: CurrentUser, now: Now
) -> ProposalOut:
    rejected = service.reject(session, user, proposal_id=proposal_id, note=body.note, now=now)
    return ProposalOut.of(rejected, now)


@router.post("/{proposal_id}/withdraw", response_model=ProposalOut)
def withdraw(
    proposal_id: ProposalId, session: WriteSession, user: CurrentUser, now: Now
) -> ProposalOut:
    return ProposalOut.of(service.withdraw(session, user, proposal_id=proposal_id, now=now), now)
