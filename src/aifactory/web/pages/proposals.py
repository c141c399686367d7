"""Calls, proposals and reviews: from an open call to an allocation, in the browser.

Every read and write goes through services.programmes and services.proposals, which check the
matrix and the rules on top of it (a reviewer sees only what is assigned to them; conflicts of
interest are refused). The page shows what a person needs to act (services.proposal_detail):
which reviewers would be in conflict (a member of any project of the applicant's organisation:
domain.programmes), before an admin assigns and to a reviewer whose membership came later; and
it asks for a declaration of no conflict that a reviewer ticks with each review.

Access modes (domain.access_modes): a call is opened in a mode with its terms; each proposal
shows its mode, the Amsterdam day its answer is due and whether it is late. A Playground request
is awarded (or refused) as it is submitted, so the applicant lands on an awarded proposal.

Forms post here, are checked for CSRF (`SignedPost`) and on bad input re-render with the
service's message next to the field it names (`form_problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from aifactory.domain.access_modes import AccessMode, CallTerms, Funding, due_day
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import ProposalState
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.faces.inputs import Name, ProposalId, Title
from aifactory.faces.state import StateDep
from aifactory.services import programmes, proposals, tenancy
from aifactory.services.login import SignedIn
from aifactory.services.proposal_detail import proposal_detail
from aifactory.services.proposal_views import ProposalView
from aifactory.services.session import Session
from aifactory.web.forms import valid
from aifactory.web.nav import may_somewhere
from aifactory.web.review_forms import day_text, form_problem, moment, number, see_other, whole
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
DAY = timedelta(days=1)
CALL_FIELDS = (
    "name",
    "programme",
    "title",
    "opens_at",
    "closes_at",
    "budget_gpu_hours",
    "access_mode",
    "ceiling_gpu_hours",
    "min_days",
    "max_days",
    "cutoff_days",
    "funding",
)
MODES = [(m.value, m.value.replace("_", " ")) for m in AccessMode]
FUNDERS = [(Funding.NATIONAL.value, "national"), (Funding.EU.value, "EU (EuroHPC)")]
PROPOSAL_FIELDS = (
    "call",
    "project",
    "title",
    "abstract",
    "justification",
    "requested_gpu_hours",
    "gpu_model",
    "planned_datasets",
    "requested_days",
)
AWARD_FIELDS = ("gpu_hours", "valid_from", "valid_to", "quota_gpus", "gpu_model", "note")


# ---- calls and the list of proposals ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """A proposal's deadline as shown: the Amsterdam day it is due, and whether it is late."""

    day: str
    late: bool


def due_of(views: Iterable[ProposalView], now: float) -> dict[int, Due]:
    """By proposal id, for those whose call has a service level."""
    return {
        v.proposal.id: Due(due_day(v.deadline).isoformat(), v.late(now))
        for v in views
        if v.deadline is not None
    }


@router.get("/proposals")
def proposals_page(request: Request, signed: Signed, state: StateDep) -> Response:
    return _index(request, signed, state)


def _index(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    me, now = signed.principal, state.clock()
    with state.db.read() as session:
        calls = programmes.list_calls(session, me, now=now)
        found = proposals.list_proposals(session, me)
        names = [(p.name, f"{p.name}: {p.title}") for p in programmes.list_programmes(session, me)]
    today = datetime.fromtimestamp(now, UTC)
    defaults = {
        "opens_at": day_text(today),
        "closes_at": day_text(today + 30 * DAY),
        "access_mode": AccessMode.REVIEWED.value,
        "funding": Funding.NATIONAL.value,
    }
    return render(
        request,
        "proposals/index.html",
        signed,
        status_code=status_code,
        title="Calls and proposals",
        calls=list(reversed(calls)),
        proposals=list(reversed(found)),
        due=due_of(found, now),
        programmes=names,
        modes=MODES,
        funders=FUNDERS,
        may_open_call=me.may(Action.CALL_CREATE),
        may_apply=may_somewhere(me, Action.PROPOSAL_SUBMIT),
        errors=errors or {},
        form={**defaults, **(form or {})},
    )


@router.post("/proposals/calls")
def open_call(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    name: Text = "",
    programme: Text = "",
    title: Text = "",
    opens_at: Text = "",
    closes_at: Text = "",
    budget_gpu_hours: Text = "",
    access_mode: Text = "reviewed",
    ceiling_gpu_hours: Text = "",
    min_days: Text = "",
    max_days: Text = "",
    cutoff_days: Text = "",
    funding: Text = "national",
) -> Response:
    given = (name, programme, title, opens_at, closes_at, budget_gpu_hours)
    terms_given = (access_mode, ceiling_gpu_hours, min_days, max_days, cutoff_days, funding)
    typed = dict(zip(CALL_FIELDS, (*given, *terms_given), strict=True))
    try:
        with state.db.session() as session:
            programmes.create_call(
                session,
                signed.principal,
                name=valid(Name, name.strip(), "name"),
                programme=programme,
                title=valid(Title, title, "title"),
                opens_at=moment(opens_at, "opens_at"),
                closes_at=moment(closes_at, "closes_at"),
                budget_gpu_hours=number(budget_gpu_hours, "budget_gpu_hours"),
                terms=_terms(typed),
                now=state.clock(),
            )
    except AifactoryError as exc:
        errors, status = form_problem(exc, CALL_FIELDS)
        return _index(request, signed, state, status_code=status, errors=errors, form=typed)
    return see_other("/proposals")


def _terms(typed: dict[str, str]) -> CallTerms:
    """A call's terms from the form; an empty box leaves the setting to its mode."""
    try:
        mode = AccessMode(typed["access_mode"])
    except ValueError:
        raise InvalidInput("choose an access mode", field="access_mode") from None
    try:
        funder = Funding(typed["funding"])
    except ValueError:
        raise InvalidInput("choose national or EU", field="funding") from None
    ceiling = typed["ceiling_gpu_hours"].strip()
    cutoffs = [d for d in typed["cutoff_days"].replace(",", " ").split() if d]
    return CallTerms(
        mode=mode,
        ceiling_gpu_hours=number(ceiling, "ceiling_gpu_hours") if ceiling else None,
        min_days=_maybe_whole(typed["min_days"], "min_days"),
        max_days=_maybe_whole(typed["max_days"], "max_days"),
        cutoff_days=tuple(whole(d, "cutoff_days") for d in cutoffs),
        funding=funder,
    )


def _call_terms_text(call: programmes.CallView) -> str:
    """What an applicant needs to know of a call to choose it."""
    terms, left = call.call.terms, f"{call.left_gpu_hours:,.0f} GPU-h left"
    if terms.mode is AccessMode.REVIEWED:
        return left
    low, high = terms.days()
    parts = [terms.mode.value.replace("_", " "), left]
    if terms.ceiling_gpu_hours is not None:
        parts.append(f"at most {terms.ceiling_gpu_hours:,.0f} GPU-h each")
    if low is not None and high is not None:
        parts.append(f"{low}–{high} days")
    return ", ".join(parts)


def _maybe_whole(text: str, field: str) -> int | None:
    return whole(text, field) if text.strip() else None


# ---- applying --------------------------------------------------------------------------------


@router.get("/proposals/new")
def new_proposal(request: Request, signed: Signed, state: StateDep, call: str = "") -> Response:
    return _new(request, signed, state, form={"call": call})


def _new(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    *,
    form: dict[str, str],
    status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    me, now = signed.principal, state.clock()
    if not may_somewhere(me, Action.PROPOSAL_SUBMIT):
        me.authorize(Action.PROPOSAL_SUBMIT)  # refused, saying who may
    with state.db.read() as session:
        calls = [
            (c.call.name, f"{c.call.name}: {c.call.title} ({_call_terms_text(c)})")
            for c in programmes.list_calls(session, me, now=now)
            if c.open_now
        ]
        applicants = tenancy.list_project_views(session, me, may=Action.PROPOSAL_SUBMIT)
    projects = [(p.name, p.name) for p in applicants]
    return render(
        request,
        "proposals/new.html",
        signed,
        status_code=status_code,
        title="Apply for compute",
        calls=calls,
        projects=projects,
        errors=errors or {},
        form=form,
    )


@router.post("/proposals/new")
def submit_proposal(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    call: Text = "",
    project: Text = "",
    title: Text = "",
    abstract: Text = "",
    justification: Text = "",
    requested_gpu_hours: Text = "",
    gpu_model: Text = "",
    planned_datasets: Text = "",
    requested_days: Text = "",
) -> Response:
    given = (call, project, title, abstract, justification, requested_gpu_hours, gpu_model)
    typed = dict(zip(PROPOSAL_FIELDS, (*given, planned_datasets, requested_days), strict=True))
    try:
        with state.db.session() as session:
            view = proposals.submit_proposal(
                session,
                signed.principal,
                call=call,
                project=project,
                title=title,
                abstract=abstract,
                justification=justification,
                requested_gpu_hours=number(requested_gpu_hours, "requested_gpu_hours"),
                gpu_model=gpu_model.strip() or None,
                planned_datasets=[d.strip() for d in planned_datasets.split(",") if d.strip()],
                requested_days=_maybe_whole(requested_days, "requested_days"),
                now=state.clock(),
            )
            proposal_id = view.proposal.id
    except AifactoryError as exc:
        errors, status = form_problem(exc, PROPOSAL_FIELDS)
        return _new(request, signed, state, form=typed, status_code=status, errors=errors)
    return see_other(f"/proposals/{proposal_id}")


# ---- one proposal: reviewers, reviews, the decision -----------------------------------------


@router.get("/proposals/{proposal_id}")
def proposal_page(
    request: Request, proposal_id: ProposalId, signed: Signed, state: StateDep
) -> Response:
    return _detail(request, signed, state, proposal_id)


def _detail(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    proposal_id: int,
    *,
    status_code: int = 200,
    failed: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    me, now = signed.principal, state.clock()
    with state.db.read() as session:
        detail = proposal_detail(session, me, proposal_id)
        calls = programmes.list_calls(session, me, now=now)
    p = detail.view.proposal
    today = datetime.fromtimestamp(now, UTC)
    terms = next(c.call.terms for c in calls if c.call.name == detail.view.call)
    days = p.requested_days or terms.days()[1] or 180  # what was asked, else the longest allowed
    defaults = {
        "gpu_hours": f"{p.requested_gpu_hours:g}",
        "valid_from": day_text(today),
        "valid_to": day_text(today + days * DAY),
        "quota_gpus": "0",
        "gpu_model": p.gpu_model or "",
    }
    submitted = p.state == ProposalState.SUBMITTED.value
    project = p.project_id
    return render(
        request,
        "proposals/detail.html",
        signed,
        status_code=status_code,
        title=f"Proposal {p.id}: {p.title}",
        d=detail,
        p=p,
        due=due_of([detail.view], now).get(p.id),
        submitted=submitted,
        may_assign=submitted and me.may(Action.PROPOSAL_ASSIGN, project),
        may_review=submitted and detail.my_review is not None,
        may_decide=submitted and me.may(Action.PROPOSAL_DECIDE, project),
        may_withdraw=submitted and me.may(Action.PROPOSAL_WITHDRAW, project),
        failed=failed,
        errors=errors or {},
        form={**defaults, **(form or {})},
    )


@router.post("/proposals/{proposal_id}/reviewers")
def assign_reviewer(
    request: Request,
    proposal_id: ProposalId,
    signed: SignedPost,
    state: StateDep,
    reviewer: Text = "",
) -> Response:
    def act(session: Session) -> None:
        proposals.assign_reviewer(
            session, signed.principal, proposal_id=proposal_id, reviewer=reviewer, now=state.clock()
        )

    return _act(request, signed, state, proposal_id, "assign", act, {"reviewer": reviewer})


@router.post("/proposals/{proposal_id}/reviews")
def review(
    request: Request,
    proposal_id: ProposalId,
    signed: SignedPost,
    state: StateDep,
    score: Text = "",
    comment: Text = "",
    no_conflict: Text = "",
) -> Response:
    def act(session: Session) -> None:
        proposals.review(
            session,
            signed.principal,
            proposal_id=proposal_id,
            score=whole(score, "score"),
            comment=comment,
            now=state.clock(),
        )
        if no_conflict != "yes":  # after the service's checks; raising rolls the review back
            raise InvalidInput(
                "declare that you have no conflict of interest with the applicant, "
                "or ask the facility to assign another reviewer",
                field="no_conflict",
            )

    typed = {"score": score, "comment": comment, "no_conflict": no_conflict}
    return _act(request, signed, state, proposal_id, "review", act, typed)


@router.post("/proposals/{proposal_id}/award")
def award(
    request: Request,
    proposal_id: ProposalId,
    signed: SignedPost,
    state: StateDep,
    gpu_hours: Text = "",
    valid_from: Text = "",
    valid_to: Text = "",
    quota_gpus: Text = "0",
    gpu_model: Text = "",
    note: Text = "",
) -> Response:
    def act(session: Session) -> None:
        proposals.award(
            session,
            signed.principal,
            proposal_id=proposal_id,
            gpu_hours=number(gpu_hours, "gpu_hours"),
            valid_from=moment(valid_from, "valid_from"),
            valid_to=moment(valid_to, "valid_to"),
            quota_gpus=whole(quota_gpus, "quota_gpus"),
            gpu_model=gpu_model.strip() or None,
            note=note,
            now=state.clock(),
        )

    given = (gpu_hours, valid_from, valid_to, quota_gpus, gpu_model, note)
    return _act(
        request,
        signed,
        state,
        proposal_id,
        "award",
        act,
        dict(zip(AWARD_FIELDS, given, strict=True)),
    )


@router.post("/proposals/{proposal_id}/reject")
def reject(
    request: Request, proposal_id: ProposalId, signed: SignedPost, state: StateDep, note: Text = ""
) -> Response:
    def act(session: Session) -> None:
        proposals.reject(
            session, signed.principal, proposal_id=proposal_id, note=note, now=state.clock()
        )

    return _act(request, signed, state, proposal_id, "reject", act, {"reject_note": note})


@router.post("/proposals/{proposal_id}/withdraw")
def withdraw(
    request: Request, proposal_id: ProposalId, signed: SignedPost, state: StateDep
) -> Response:
    def act(session: Session) -> None:
        proposals.withdraw(session, signed.principal, proposal_id=proposal_id, now=state.clock())

    return _act(request, signed, state, proposal_id, "withdraw", act, {})


FORM_FIELDS = {
    "assign": ("reviewer",),
    "review": ("score", "comment", "no_conflict"),
    "award": AWARD_FIELDS,
    "reject": ("note",),
    "withdraw": (),
}


def _act(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    proposal_id: int,
    which: str,
    act: Callable[[Session], None],
    typed: dict[str, str],
) -> Response:
    """Run one of the detail page's forms; on bad input show the page again with the message."""
    try:
        with state.db.session() as session:
            act(session)
    except AifactoryError as exc:
        errors, status = form_problem(exc, FORM_FIELDS[which])
        return _detail(
            request,
            signed,
            state,
            proposal_id,
            status_code=status,
            failed=which,
            errors=errors,
            form=typed,
        )
    return see_other(f"/proposals/{proposal_id}")
