"""Proposals: a project asks an open call for GPU-hours; reviewers score it; an admin decides.

Flow (domain.proposal_flow): submitted → awarded | rejected | withdrawn, decided once; `_decide`
is the one place the state changes. An award becomes an allocation (services.allocations)
with its AWARD ledger entry, and the awards of one call never exceed the call's budget.

Starter rule: a request of at most the programme's `starter_gpu_hours` (when above 0) is
awarded at once by "auto", valid from now for `starter_days`, without a quota — unless the
call has no budget left for it or the project already holds an allocation of the programme
then, in which case it waits for an admin like any other. It applies to reviewed calls only:
the access modes set their own pace.

Access modes (domain.access_modes): a request may not exceed its call's per-proposal ceiling,
and an award must last as long as the call's mode allows. A Playground request is decided at
submission, first come, first served: within the ceiling and the call's remaining budget it is
awarded at once (an allocation from now for the requested days, or the call's longest); else
it is refused with a 4xx naming `requested_gpu_hours` and nothing is stored — a Playground
does not queue, the applicant asks a reviewed mode instead. Each proposal's view carries its
deadline under the call's service level, and whether it is late (services.proposal_views).

Conflict of interest: a reviewer who is a member of any project of the applicant's
organisation may not be assigned, nor review if that membership came later.

Who sees what (PROPOSAL_READ): admins see every proposal; a project's members (owner, member,
viewer) see their project's; a reviewer sees only those assigned to them — the rule on top of
the matrix, as are assignment and conflict of interest for PROPOSAL_REVIEW; anyone else is told
it does not exist. What each caller sees of a proposal and its reviews: services.proposal_views
(re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from aifactory.domain import notices
from aifactory.domain.access_modes import (
    AccessMode,
    AutoAward,
    CallTerms,
    duration_problem,
    playground_award,
)
from aifactory.domain.money import gpu_hours as hours_of
from aifactory.domain.money import gpu_seconds
from aifactory.domain.permissions import Action, Role, allowed, who_may
from aifactory.domain.programmes import ProposalState, conflict_of_interest
from aifactory.domain.proposal_flow import transition_problem
from aifactory.domain.tenancy import FacilityRole
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.governance import audit
from aifactory.services import allocations
from aifactory.services.allocations import AllocationView, Grant
from aifactory.services.principal import Principal
from aifactory.services.programmes import (
    awarded_by_call,
    call_by_name,
    call_is_open,
    call_terms,
    hours_text,
    time_text,
)
from aifactory.services.proposal_views import ProposalRecord as ProposalRecord
from aifactory.services.proposal_views import ProposalView as ProposalView
from aifactory.services.proposal_views import ReviewView as ReviewView
from aifactory.services.proposal_views import reads_all_of, view_of, views_of
from aifactory.services.tenancy import project_by_name, user_by_name
from aifactory.store import outbox
from aifactory.store.models import (
    Allocation,
    Call,
    Member,
    Organisation,
    Programme,
    Project,
    Proposal,
    Review,
    User,
)

AUTO = "auto"
STARTER_NOTE = "auto-approved starter allocation"
PLAYGROUND_NOTE = "playground: first come, first served"
DAY_S = 86400
MAX_DATASETS = 100
MAX_DAYS = 3660  # an allocation's length, for a call whose mode does not bound it


def submit_proposal(
    session: Session,
    principal: Principal,
    *,
    call: str,
    project: str,
    title: str,
    abstract: str,
    justification: str,
    requested_gpu_hours: float,
    gpu_model: str | None = None,
    planned_datasets: Sequence[str] = (),
    requested_days: int | None = None,
    now: float,
) -> ProposalView:
    """Ask `call` for GPU-hours (for `requested_days` where its mode fixes durations)."""
    applicant = project_by_name(session, principal, project, action=Action.PROPOSAL_SUBMIT)
    found = call_by_name(session, call)
    _check_open(found, now)
    programme = _programme_of(session, found)
    allocations.check_eligible(session, applicant, programme)
    _check_request(found, requested_gpu_hours, gpu_model, planned_datasets)
    terms = call_terms(found)
    _check_terms(terms, requested_gpu_hours, requested_days)
    _check_texts({"title": title, "abstract": abstract, "justification": justification})
    playground = _playground_award(session, found, terms, requested_gpu_hours, requested_days, now)
    proposal = Proposal(
        call_id=found.id,
        project_id=applicant.id,
        title=title.strip(),
        abstract=abstract.strip(),
        justification=justification.strip(),
        requested_gpu_hours=requested_gpu_hours,
        gpu_model=gpu_model,
        planned_datasets=list(planned_datasets),
        requested_days=requested_days,
        state=ProposalState.SUBMITTED.value,
        submitted_by=principal.user_id,
        submitted_at=now,
    )
    session.add(proposal)
    session.flush()
    if playground is not None:
        _award_playground(session, proposal, playground, now=now)
    elif terms.mode is AccessMode.REVIEWED:
        _maybe_starter(session, proposal, now=now)
    return view_of(session, principal, proposal)


def _award_playground(
    session: Session, proposal: Proposal, decided: AutoAward, *, now: float
) -> None:
    """Award at once; a project that already holds an allocation of the programme then is
    refused (one at a time), naming the project."""
    window = (decided.valid_from, decided.valid_to)
    grant = Grant(decided.gpu_hours, *window, 0, proposal.gpu_model)
    try:
        _award(session, proposal, grant, actor=AUTO, source=None, note=PLAYGROUND_NOTE, now=now)
    except InvalidInput as exc:
        field_name = "project" if exc.field == "valid_from" else exc.field
        raise InvalidInput(exc.message, field=field_name) from exc


def _check_terms(terms: CallTerms, requested: float, days: int | None) -> None:
    """The request within the call's ceiling, and its length within the mode's durations
    (a Playground's ceiling is the award rule's to name)."""
    ceiling = terms.ceiling_gpu_hours
    if terms.mode is not AccessMode.PLAYGROUND and ceiling is not None and requested > ceiling:
        raise InvalidInput(
            f"a {terms.mode} call awards at most {ceiling:g} GPU-h a proposal",
            field="requested_gpu_hours",
        )
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"must be 1–{MAX_DAYS} days", field="requested_days")
    problem = None if days is None else duration_problem(terms, days)
    if problem is not None:
        raise InvalidInput(problem, field="requested_days")


def _playground_award(
    session: Session,
    call: Call,
    terms: CallTerms,
    requested: float,
    days: int | None,
    now: float,
) -> AutoAward | None:
    """A Playground call's award, decided before anything is stored; None for other modes."""
    if terms.mode is not AccessMode.PLAYGROUND:
        return None
    left_gpu_s = _left_gpu_s(session, call)
    _, longest = terms.days()
    assert longest is not None  # a Playground's durations are bounded
    decided = playground_award(
        terms,
        requested_gpu_hours=requested,
        left_gpu_hours=hours_of(left_gpu_s),
        days=days if days is not None else longest,
        now=now,
    )
    if isinstance(decided, AutoAward):
        return decided
    field_name, reason = decided
    raise InvalidInput(f"call {call.name}: {reason}", field=field_name)


def _check_open(call: Call, now: float) -> None:
    if call_is_open(call, now):
        return
    when = (
        f"opens at {time_text(call.opens_at)}"
        if now < call.opens_at
        else f"closed at {time_text(call.closes_at)}"
    )
    raise InvalidInput(f"call {call.name} is not open: it {when}", field="call")


def _check_request(
    call: Call, requested: float, gpu_model: str | None, datasets: Sequence[str]
) -> None:
    if not (math.isfinite(requested) and 0 < requested <= call.budget_gpu_hours):
        raise InvalidInput(
            f"must be above 0 and at most the call's budget, {call.budget_gpu_hours:g} GPU-h",
            field="requested_gpu_hours",
        )
    if gpu_model is not None and not (gpu_model.strip() and len(gpu_model) <= 64):
        raise InvalidInput("must be 1–64 characters, or left out for any model", field="gpu_model")
    if len(datasets) > MAX_DATASETS or any(not d.strip() or len(d) > 128 for d in datasets):
        raise InvalidInput(
            f"at most {MAX_DATASETS} dataset names of 1–128 characters", field="planned_datasets"
        )


def _check_texts(texts: dict[str, str]) -> None:
    for name, text in texts.items():
        if not text.strip():
            raise InvalidInput("must not be empty", field=name)
    if len(texts["title"].strip()) > 200:
        raise InvalidInput("must be at most 200 characters", field="title")


def _maybe_starter(session: Session, proposal: Proposal, *, now: float) -> None:
    """Award a small first request at once (see the module's starter rule)."""
    call = _call_of(session, proposal)
    programme = _programme_of(session, call)
    starter = programme.starter_gpu_hours
    if not 0 < proposal.requested_gpu_hours <= starter:
        return
    window_end = now + programme.starter_days * DAY_S
    grant = Grant(proposal.requested_gpu_hours, now, window_end, 0, proposal.gpu_model)
    try:
        with session.begin_nested():
            _award(session, proposal, grant, actor=AUTO, source=None, note=STARTER_NOTE, now=now)
    except InvalidInput:
        return  # no budget left in the call, or an allocation already held: an admin decides


def award(
    session: Session,
    principal: Principal,
    *,
    proposal_id: int,
    gpu_hours: float,
    valid_from: float,
    valid_to: float,
    quota_gpus: int = 0,
    gpu_model: str | None = None,
    note: str | None = None,
    now: float,
) -> AllocationView:
    """Award GPU-hours to a submitted proposal; `gpu_model` defaults to the one it asked for."""
    proposal = _proposal(session, principal, proposal_id, Action.PROPOSAL_DECIDE)
    model = gpu_model if gpu_model is not None else proposal.gpu_model
    grant = Grant(gpu_hours, valid_from, valid_to, quota_gpus, model)
    text = note.strip() if note and note.strip() else f"awarded {gpu_hours:g} GPU-h"
    allocation = _award(
        session, proposal, grant, actor=principal.name, source=principal.source, note=text, now=now
    )
    return allocations.view_of(session, allocation, now=now)


def _award(
    session: Session,
    proposal: Proposal,
    grant: Grant,
    *,
    actor: str,
    source: str | None,
    note: str,
    now: float,
) -> Allocation:
    _check_move(proposal, ProposalState.AWARDED)
    allocations.check_grant(grant)
    call = _call_of(session, proposal)
    _check_grant_terms(call_terms(call), grant)
    _check_call_budget(session, call, grant.gpu_hours)
    project = session.get(Project, proposal.project_id)
    assert project is not None  # a foreign key
    allocation = allocations.open_allocation(
        session,
        project=project,
        programme=_programme_of(session, call),
        grant=grant,
        name=f"{project.name}-{call.name}",
        proposal_id=proposal.id,
        actor=actor,
        reason=f"awarded from proposal {proposal.id}",
        now=now,
        source=source,
    )
    _decide(proposal, ProposalState.AWARDED, note=note, now=now)
    _tell(session, proposal, project.name, "awarded", now=now)
    audit.record(
        session,
        actor=actor,
        action="proposal.award",
        object=f"proposal:{proposal.id}",
        at=now,
        source=source,
        project_id=proposal.project_id,
        detail={"allocation": allocation.name, "gpu_hours": grant.gpu_hours, "note": note},
    )
    return allocation


def _check_grant_terms(terms: CallTerms, grant: Grant) -> None:
    ceiling = terms.ceiling_gpu_hours
    if ceiling is not None and grant.gpu_hours > ceiling:
        raise InvalidInput(
            f"a {terms.mode} call awards at most {ceiling:g} GPU-h a proposal", field="gpu_hours"
        )
    problem = duration_problem(terms, (grant.valid_to - grant.valid_from) / DAY_S)
    if problem is not None:
        raise InvalidInput(problem, field="valid_to")


def _left_gpu_s(session: Session, call: Call) -> int:
    """GPU-seconds the call can still award, with the call locked (PostgreSQL; SQLite writers
    are serial): two awards at once cannot both take the call's last GPU-hours."""
    session.execute(select(Call.id).where(Call.id == call.id).with_for_update())
    awarded = awarded_by_call(session, [call.id]).get(call.id, 0)
    return gpu_seconds(call.budget_gpu_hours) - awarded


def _check_call_budget(session: Session, call: Call, gpu_hours: float) -> None:
    left = _left_gpu_s(session, call)
    if gpu_seconds(gpu_hours) > left:
        raise InvalidInput(
            f"call {call.name} has {hours_text(max(left, 0))} GPU-h left", field="gpu_hours"
        )


def reject(
    session: Session, principal: Principal, *, proposal_id: int, note: str, now: float
) -> ProposalView:
    proposal = _proposal(session, principal, proposal_id, Action.PROPOSAL_DECIDE)
    if not note.strip():
        raise InvalidInput("say why the proposal is rejected", field="note")
    _decide(proposal, ProposalState.REJECTED, note=note.strip(), now=now)
    project = session.get(Project, proposal.project_id)
    _tell(session, proposal, project.name if project else "", "rejected", now=now)
    audit.record(
        session,
        actor=principal.name,
        action="proposal.reject",
        object=f"proposal:{proposal.id}",
        at=now,
        source=principal.source,
        project_id=proposal.project_id,
        detail={"note": note.strip()},
    )
    return view_of(session, principal, proposal)


def withdraw(
    session: Session, principal: Principal, *, proposal_id: int, now: float
) -> ProposalView:
    """The applicant's owners take their proposal back before it is decided."""
    proposal = _proposal(session, principal, proposal_id, Action.PROPOSAL_WITHDRAW)
    note = f"withdrawn by {principal.name}"
    _decide(proposal, ProposalState.WITHDRAWN, note=note, now=now)
    return view_of(session, principal, proposal)


def _tell(session: Session, proposal: Proposal, project: str, outcome: str, *, now: float) -> None:
    """The applicant and the project's owners hear of the decision (store.outbox)."""
    notice = notices.proposal_decided(
        proposal.id, proposal.title, project, outcome, proposal.decision_note or ""
    )
    people = [proposal.submitted_by, *outbox.owners_of(session, proposal.project_id)]
    outbox.notify(session, notice, people, now=now)


def _check_move(proposal: Proposal, to: ProposalState) -> None:
    problem = transition_problem(ProposalState(proposal.state), to)
    if problem is not None:
        raise Conflict(f"proposal {proposal.id}: {problem}", field="state")


def _decide(proposal: Proposal, to: ProposalState, *, note: str, now: float) -> None:
    """The one place a proposal's state changes."""
    _check_move(proposal, to)
    proposal.state = to.value
    proposal.decided_at = now
    proposal.decision_note = note


def assign_reviewer(
    session: Session, principal: Principal, *, proposal_id: int, reviewer: str, now: float
) -> ProposalView:
    """Ask `reviewer` to review the proposal; asking twice changes nothing."""
    proposal = _proposal(session, principal, proposal_id, Action.PROPOSAL_ASSIGN)
    _check_under_review(proposal)
    user = user_by_name(session, reviewer, field="reviewer")
    role = Role.of_facility(FacilityRole(user.facility_role))
    if role is None or not allowed(Action.PROPOSAL_REVIEW, frozenset({role})):
        raise InvalidInput(
            f"{user.name} has the facility role {user.facility_role}; "
            f"only {who_may(Action.PROPOSAL_REVIEW)} may review",
            field="reviewer",
        )
    _check_no_conflict(session, user, proposal)
    if _review_by(session, proposal.id, user.id) is None:
        session.add(Review(proposal_id=proposal.id, reviewer_id=user.id, assigned_at=now))
        session.flush()
    return view_of(session, principal, proposal)


def review(
    session: Session,
    principal: Principal,
    *,
    proposal_id: int,
    score: int,
    comment: str,
    now: float,
) -> ProposalView:
    """Score (1–5) and comment; reviewing again replaces one's earlier review."""
    proposal = _proposal(session, principal, proposal_id, Action.PROPOSAL_REVIEW)
    row = _review_by(session, proposal.id, principal.user_id)
    if row is None:
        raise PermissionDenied("only a reviewer assigned to this proposal may review it")
    _check_under_review(proposal)
    if not 1 <= score <= 5:
        raise InvalidInput("must be 1–5", field="score")
    if not comment.strip():
        raise InvalidInput("must not be empty", field="comment")
    user = session.get(User, principal.user_id)
    assert user is not None  # the principal's own row
    _check_no_conflict(session, user, proposal)
    row.score, row.comment, row.reviewed_at = score, comment.strip(), now
    session.flush()
    return view_of(session, principal, proposal)


def _check_under_review(proposal: Proposal) -> None:
    if proposal.state != ProposalState.SUBMITTED.value:
        raise Conflict(
            f"proposal {proposal.id} is {proposal.state}; its review is closed", field="state"
        )


def _check_no_conflict(session: Session, reviewer: User, proposal: Proposal) -> None:
    project = session.get(Project, proposal.project_id)
    assert project is not None  # a foreign key
    theirs = session.scalars(
        select(Project.organisation_id)
        .join(Member, Member.project_id == Project.id)
        .where(Member.user_id == reviewer.id)
    )
    if conflict_of_interest(theirs, project.organisation_id):
        org = session.get(Organisation, project.organisation_id)
        assert org is not None  # a foreign key
        raise Conflict(
            f"reviewer {reviewer.name} belongs to organisation {org.name}, the applicant's: "
            "conflict of interest",
            field="reviewer",
        )


def _review_by(session: Session, proposal_id: int, user_id: int) -> Review | None:
    stmt = select(Review).where(Review.proposal_id == proposal_id, Review.reviewer_id == user_id)
    return session.scalars(stmt).first()


def list_proposals(
    session: Session,
    principal: Principal,
    *,
    call: str | None = None,
    project: str | None = None,
    state: ProposalState | None = None,
) -> list[ProposalView]:
    stmt = select(Proposal).order_by(Proposal.id)
    if not reads_all_of(principal, None):
        mine = [p for p in principal.memberships if reads_all_of(principal, p)]
        visible: ColumnElement[bool] = Proposal.project_id.in_(mine)
        if principal.may(Action.PROPOSAL_READ):  # a reviewer: those assigned to them
            assigned = select(Review.proposal_id).where(Review.reviewer_id == principal.user_id)
            visible = or_(visible, Proposal.id.in_(assigned))
        stmt = stmt.where(visible)
    if call is not None:
        stmt = stmt.where(Proposal.call_id == call_by_name(session, call).id)
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.PROPOSAL_READ)
        stmt = stmt.where(Proposal.project_id == found.id)
    if state is not None:
        stmt = stmt.where(Proposal.state == state.value)
    return views_of(session, principal, list(session.scalars(stmt)))


def get_proposal(session: Session, principal: Principal, proposal_id: int) -> ProposalView:
    return view_of(session, principal, _proposal(session, principal, proposal_id))


def _proposal(
    session: Session,
    principal: Principal,
    proposal_id: int,
    action: Action = Action.PROPOSAL_READ,
) -> Proposal:
    """The proposal if the caller may do `action` to it: the same NotFound whether it exists or
    not for one who sees neither it nor its project, PermissionDenied for anyone else."""
    principal.refuse_early(action)
    proposal = session.get(Proposal, proposal_id)
    if proposal is None or not (
        _sees(session, principal, proposal) or principal.sees(proposal.project_id)
    ):
        raise NotFound(f"proposal {proposal_id} not found", field="proposal_id")
    principal.authorize(action, proposal.project_id, seen=True)
    return proposal


def _sees(session: Session, principal: Principal, proposal: Proposal) -> bool:
    if reads_all_of(principal, proposal.project_id):
        return True
    assigned = _review_by(session, proposal.id, principal.user_id) is not None
    return assigned and principal.may(Action.PROPOSAL_READ)


def _call_of(session: Session, proposal: Proposal) -> Call:
    call = session.get(Call, proposal.call_id)
    assert call is not None  # a foreign key
    return call


def _programme_of(session: Session, call: Call) -> Programme:
    programme = session.get(Programme, call.programme_id)
    assert programme is not None  # a foreign key
    return programme
