"""One proposal with what acting on it needs: the proposal (services.proposals decides who sees
it and which reviews), its applicant's organisation, and the conflicts of interest to warn about
before anyone acts.

Conflict of interest (domain.programmes): a reviewer who belongs to any project of the
applicant's organisation. services.proposals refuses to assign such a reviewer, and refuses the
review of one whose membership came later; this view names both cases ahead, for the admin who
assigns (candidates marked, assigned ones flagged) and for the reviewer themself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action, Role, allowed
from aifactory.domain.programmes import conflict_of_interest
from aifactory.domain.tenancy import FacilityRole
from aifactory.services import proposals, tenancy
from aifactory.services.principal import Principal
from aifactory.services.proposal_views import ProposalView, ReviewView
from aifactory.store.models import Member, Organisation, Project


@dataclass(frozen=True, slots=True)
class Candidate:
    """A user who could review (their facility role may), and whether they are in conflict."""

    name: str
    role: FacilityRole
    conflict: bool
    assigned: bool


@dataclass(frozen=True, slots=True)
class ProposalDetail:
    view: ProposalView
    organisation: str  # the applicant's
    my_review: ReviewView | None  # the caller's own review, when assigned
    my_conflict: bool  # the caller belongs to a project of the applicant's organisation
    candidates: tuple[Candidate, ...]  # for those who assign reviewers; else empty
    mean_score: float | None


def proposal_detail(session: Session, principal: Principal, proposal_id: int) -> ProposalDetail:
    view = proposals.get_proposal(session, principal, proposal_id)  # checks who may see it
    project = session.get_one(Project, view.proposal.project_id)
    org = session.get_one(Organisation, project.organisation_id)
    mine = next((r for r in view.reviews if r.reviewer == principal.name), None)
    candidates: tuple[Candidate, ...] = ()
    if principal.may(Action.PROPOSAL_ASSIGN, project.id):
        candidates = _candidates(session, principal, view, org.id)
    scores = [r.score for r in view.reviews if r.score is not None]
    return ProposalDetail(
        view=view,
        organisation=org.name,
        my_review=mine,
        my_conflict=principal.user_id in _conflicted(session, [principal.user_id], org.id),
        candidates=candidates,
        mean_score=sum(scores) / len(scores) if scores else None,
    )


def _candidates(
    session: Session, principal: Principal, view: ProposalView, org_id: int
) -> tuple[Candidate, ...]:
    """Everyone whose facility role may review, the conflicted ones marked (admins only:
    tenancy refuses the user list to anyone else)."""
    reviewers = [u for u in tenancy.list_users(session, principal) if _may_review(u.facility_role)]
    conflicted = _conflicted(session, [u.id for u in reviewers], org_id)
    assigned = {r.reviewer for r in view.reviews}
    return tuple(
        Candidate(u.name, u.facility_role, u.id in conflicted, u.name in assigned)
        for u in reviewers
    )


def _may_review(role: FacilityRole) -> bool:
    held = Role.of_facility(role)
    return held is not None and allowed(Action.PROPOSAL_REVIEW, frozenset({held}))


def _conflicted(session: Session, user_ids: list[int], org_id: int) -> set[int]:
    """Which of the users belong to a project of the organisation (domain's conflict rule)."""
    if not user_ids:
        return set()
    rows = session.execute(
        select(Member.user_id, Project.organisation_id)
        .join(Project, Project.id == Member.project_id)
        .where(Member.user_id.in_(user_ids))
    )
    orgs: dict[int, list[int]] = {}
    for user_id, org in rows:
        orgs.setdefault(user_id, []).append(org)
    return {u for u, theirs in orgs.items() if conflict_of_interest(theirs, org_id)}
