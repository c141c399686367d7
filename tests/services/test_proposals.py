"""Proposals: submit to an open call, review without conflicts of interest, award within the
call's budget (an allocation with its AWARD entry), reject, withdraw; who sees what."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from aifactory.accounting import ledger
from aifactory.domain.ledger import EntryKind
from aifactory.domain.programmes import ProposalState
from aifactory.domain.tenancy import ProjectRole
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.services.allocations import create_allocation
from aifactory.services.programmes import create_call, list_calls
from aifactory.services.proposals import (
    ProposalView,
    assign_reviewer,
    award,
    get_proposal,
    list_proposals,
    reject,
    review,
    submit_proposal,
    withdraw,
)
from aifactory.services.tenancy import add_member
from aifactory.store.db import Database
from aifactory.store.models import Allocation, LedgerEntry
from tests.services.accounting_world import DAY, T0, H, build_world, who

NOW = T0 + 3600.0


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def submit(db: Database, user: str = "owen", **change: Any) -> ProposalView:
    fields: dict[str, Any] = {
        "call": "r1",
        "project": "lab",
        "title": "Protein folding",
        "abstract": "We fold proteins.",
        "justification": "Needs 8 GPUs for a month.",
        "requested_gpu_hours": 300.0,  # above research's starter of 100: a person decides
        "gpu_model": "h100",
        "planned_datasets": ["pdb"],
        **change,
    }
    with db.session() as s:
        return submit_proposal(s, who(s, user), now=NOW, **fields)


def award_it(db: Database, proposal_id: int, user: str = "admin", **change: Any) -> Any:
    fields: dict[str, Any] = {
        "gpu_hours": 250.0,
        "valid_from": NOW,
        "valid_to": NOW + 180 * DAY,
        "quota_gpus": 4,
        **change,
    }
    with db.session() as s:
        return award(s, who(s, user), proposal_id=proposal_id, now=NOW, **fields)


def test_call_proposal_review_award_makes_an_allocation_with_its_award_entry(
    world: Database,
) -> None:
    proposal = submit(world)
    pid = proposal.proposal.id
    assert (proposal.proposal.state, proposal.allocation, proposal.reviews) == (
        "submitted",
        None,
        (),
    )
    assert (proposal.call, proposal.programme, proposal.project) == ("r1", "research", "lab")
    assert proposal.submitted_by == "owen"

    with world.session() as s:
        assigned = assign_reviewer(s, who(s, "admin"), proposal_id=pid, reviewer="rita", now=NOW)
    assert [(r.reviewer, r.score) for r in assigned.reviews] == [("rita", None)]
    with world.session() as s:
        reviewed = review(s, who(s, "rita"), proposal_id=pid, score=4, comment="Sound.", now=NOW)
    assert [(r.reviewer, r.score, r.comment) for r in reviewed.reviews] == [("rita", 4, "Sound.")]

    view = award_it(world, pid, note="strong proposal")
    allocation = view.allocation
    assert allocation.name == "lab-r1"
    assert (view.project, view.programme, allocation.proposal_id) == ("lab", "research", pid)
    assert (allocation.award_gpu_s, allocation.quota_gpus) == (250 * H, 4)
    assert allocation.gpu_model == "h100"  # the model the proposal asked for
    assert (allocation.valid_from, allocation.valid_to) == (NOW, NOW + 180 * DAY)
    assert (allocation.created_by, view.active, view.balance.left) == ("admin", True, 250 * H)

    with world.read() as s:
        (entry,) = ledger.entries_of(s, allocation.id)
        assert (entry.kind, entry.gpu_s, entry.key) == ("award", 250 * H, f"award:{allocation.id}")
        assert (entry.actor, entry.reason, entry.at) == (
            "admin",
            f"awarded from proposal {pid}",
            NOW,
        )
        assert ledger.balances(s, [allocation.id])[allocation.id].left == 250 * H
        decided = get_proposal(s, who(s, "owen"), pid)
        (call,) = [c for c in list_calls(s, who(s, "owen"), now=NOW) if c.call.name == "r1"]
    assert (decided.proposal.state, decided.allocation) == ("awarded", "lab-r1")
    assert (decided.proposal.decided_at, decided.proposal.decision_note) == (NOW, "strong proposal")
    assert (call.awarded_gpu_hours, call.left_gpu_hours) == (250.0, 750.0)


def test_a_reviewer_from_the_applicants_organisation_is_refused(world: Database) -> None:
    pid = submit(world).proposal.id
    with world.session() as s, pytest.raises(Conflict) as refused:
        assign_reviewer(s, who(s, "admin"), proposal_id=pid, reviewer="rex", now=NOW)
    assert refused.value.field == "reviewer"
    assert refused.value.message == (
        "reviewer rex belongs to organisation uva, the applicant's: conflict of interest"
    )
    with world.read() as s:
        assert get_proposal(s, who(s, "admin"), pid).reviews == ()


def test_a_conflict_of_interest_that_arose_later_stops_the_review(world: Database) -> None:
    pid = submit(world).proposal.id
    with world.session() as s:
        assign_reviewer(s, who(s, "admin"), proposal_id=pid, reviewer="rita", now=NOW)
        add_member(s, who(s, "admin"), project="nlp", user="rita", role=ProjectRole.VIEWER, now=NOW)
    with world.session() as s, pytest.raises(Conflict) as refused:
        review(s, who(s, "rita"), proposal_id=pid, score=5, comment="Great.", now=NOW)
    assert refused.value.field == "reviewer"
    assert "conflict of interest" in refused.value.message


def test_reviewers_must_hold_the_reviewer_role_and_be_assigned(world: Database) -> None:
    pid = submit(world).proposal.id
    with world.session() as s:
        admin = who(s, "admin")
        with pytest.raises(InvalidInput) as not_a_reviewer:
            assign_reviewer(s, admin, proposal_id=pid, reviewer="bob", now=NOW)
        assert not_a_reviewer.value.field == "reviewer"
        with pytest.raises(NotFound) as nobody:
            assign_reviewer(s, admin, proposal_id=pid, reviewer="ghost", now=NOW)
        assert nobody.value.field == "reviewer"
        with pytest.raises(PermissionDenied):
            assign_reviewer(s, who(s, "owen"), proposal_id=pid, reviewer="rita", now=NOW)
        assign_reviewer(s, admin, proposal_id=pid, reviewer="rita", now=NOW)
        again = assign_reviewer(s, admin, proposal_id=pid, reviewer="rita", now=NOW + 1)
        assert [(r.reviewer, r.assigned_at) for r in again.reviews] == [("rita", NOW)]

    for name, error in [("owen", PermissionDenied), ("admin", PermissionDenied)]:
        with world.session() as s, pytest.raises(error):
            review(s, who(s, name), proposal_id=pid, score=5, comment="Mine!", now=NOW)
    with world.session() as s, pytest.raises(PermissionDenied):  # bob may review nothing
        review(s, who(s, "bob"), proposal_id=pid, score=5, comment="Hm.", now=NOW)
    for score in (0, 6):
        with world.session() as s, pytest.raises(InvalidInput) as bad:
            review(s, who(s, "rita"), proposal_id=pid, score=score, comment="x", now=NOW)
        assert bad.value.field == "score"
    with world.session() as s, pytest.raises(InvalidInput) as blank:
        review(s, who(s, "rita"), proposal_id=pid, score=3, comment=" ", now=NOW)
    assert blank.value.field == "comment"

    with world.session() as s:
        review(s, who(s, "rita"), proposal_id=pid, score=2, comment="Thin.", now=NOW)
        redone = review(s, who(s, "rita"), proposal_id=pid, score=4, comment="Better.", now=NOW + 9)
    assert [(r.score, r.comment, r.reviewed_at) for r in redone.reviews] == [
        (4, "Better.", NOW + 9)
    ]


def test_applicants_see_scores_but_not_reviewers_admins_see_both(world: Database) -> None:
    pid = submit(world).proposal.id
    with world.session() as s:
        admin = who(s, "admin")
        assign_reviewer(s, admin, proposal_id=pid, reviewer="rita", now=NOW)
        assign_reviewer(s, admin, proposal_id=pid, reviewer=admin.name, now=NOW)
        review(s, who(s, "rita"), proposal_id=pid, score=3, comment="Fine.", now=NOW)
    with world.read() as s:
        seen = {name: get_proposal(s, who(s, name), pid).reviews for name in ["owen", "vera"]}
        by_admin = get_proposal(s, who(s, "admin"), pid).reviews
        by_rita = get_proposal(s, who(s, "rita"), pid).reviews
    for reviews in seen.values():  # the admin's review is not done yet: applicants see none of it
        assert [(r.reviewer, r.score, r.comment) for r in reviews] == [(None, 3, "Fine.")]
    assert [(r.reviewer, r.score) for r in by_admin] == [("rita", 3), ("admin", None)]
    assert [(r.reviewer, r.score) for r in by_rita] == [("rita", 3)]


def test_awards_never_exceed_the_calls_budget(world: Database) -> None:
    first = submit(world).proposal.id
    second = submit(world, project="nlp", user="rex", requested_gpu_hours=500.0).proposal.id
    award_it(world, first, gpu_hours=600.0)
    with pytest.raises(InvalidInput) as over:
        award_it(world, second, gpu_hours=400.5)
    assert over.value.field == "gpu_hours"
    assert over.value.message == "call r1 has 400 GPU-h left"
    assert award_it(world, second, gpu_hours=400.0).allocation.award_gpu_s == 400 * H
    with world.read() as s:
        (call,) = [c for c in list_calls(s, who(s, "bob"), now=NOW) if c.call.name == "r1"]
    assert (call.awarded_gpu_hours, call.left_gpu_hours) == (1000.0, 0.0)


def test_an_award_checks_its_amount_dates_quota_and_the_proposals_state(world: Database) -> None:
    pid = submit(world).proposal.id
    for change, field in [
        ({"gpu_hours": 0.0}, "gpu_hours"),
        ({"gpu_hours": -3.0}, "gpu_hours"),
        ({"gpu_hours": float("nan")}, "gpu_hours"),
        ({"valid_to": NOW}, "valid_to"),
        ({"valid_to": NOW - DAY}, "valid_to"),
        ({"quota_gpus": -1}, "quota_gpus"),
        ({"gpu_model": ""}, "gpu_model"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            award_it(world, pid, **change)
        assert refused.value.field == field, change
    for name in ["owen", "rita", "fiona", "olga"]:
        with pytest.raises(PermissionDenied):
            award_it(world, pid, user=name)
    with world.read() as s:
        assert s.scalars(select(Allocation).where(Allocation.proposal_id == pid)).all() == []

    award_it(world, pid, gpu_model=None)
    with pytest.raises(Conflict) as twice:
        award_it(world, pid)
    assert twice.value.field == "state"
    with world.session() as s, pytest.raises(Conflict):
        reject(s, who(s, "admin"), proposal_id=pid, note="too late", now=NOW)


def test_a_second_award_to_the_same_project_gets_a_numbered_name(world: Database) -> None:
    first = submit(world).proposal.id
    second = submit(world, requested_gpu_hours=200.0).proposal.id
    award_it(world, first, valid_to=NOW + 30 * DAY)
    with pytest.raises(InvalidInput) as overlapping:  # one allocation per programme at a time
        award_it(world, second)
    assert overlapping.value.field == "valid_from"
    assert "lab-r1" in overlapping.value.message
    later = award_it(world, second, valid_from=NOW + 30 * DAY, valid_to=NOW + 60 * DAY)
    assert later.allocation.name == "lab-r1-2"


def test_only_an_open_call_takes_proposals(world: Database) -> None:
    with world.session() as s:
        create_call(
            s,
            who(s, "admin"),
            name="r0",
            programme="research",
            title="Last year",
            opens_at=T0 - 100 * DAY,
            closes_at=NOW,
            budget_gpu_hours=10.0,
            now=T0,
        )
    with pytest.raises(InvalidInput) as closed:
        submit(world, call="r0", requested_gpu_hours=5.0)
    assert closed.value.field == "call"
    assert "closed at" in closed.value.message
    with world.session() as s, pytest.raises(InvalidInput) as early:
        submit_proposal(
            s,
            who(s, "owen"),
            call="r1",
            project="lab",
            title="t",
            abstract="a",
            justification="j",
            requested_gpu_hours=1.0,
            now=T0 - 2 * DAY,
        )
    assert early.value.field == "call"
    assert "opens at" in early.value.message
    with pytest.raises(NotFound) as unknown:
        submit(world, call="nope")
    assert unknown.value.field == "call"


def test_an_ineligible_organisation_kind_is_refused_naming_the_kinds(world: Database) -> None:
    with pytest.raises(InvalidInput) as refused:
        submit(world, user="bob", project="shop")
    assert refused.value.field == "project"
    message = refused.value.message
    assert "startup" in message
    assert "university, research_institute" in message


def test_a_proposal_needs_its_texts_and_a_request_within_the_budget(world: Database) -> None:
    for change, field in [
        ({"requested_gpu_hours": 0.0}, "requested_gpu_hours"),
        ({"requested_gpu_hours": 1000.5}, "requested_gpu_hours"),  # more than the whole call
        ({"requested_gpu_hours": float("inf")}, "requested_gpu_hours"),
        ({"title": " "}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"abstract": ""}, "abstract"),
        ({"justification": "\n"}, "justification"),
        ({"planned_datasets": [""]}, "planned_datasets"),
        ({"gpu_model": " "}, "gpu_model"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            submit(world, **change)
        assert refused.value.field == field, change
    with pytest.raises(PermissionDenied):
        submit(world, user="vera")  # a viewer of lab
    with pytest.raises(NotFound) as not_member:
        submit(world, user="bob")  # not in lab at all
    assert not_member.value.field == "project"
    assert submit(world, user="admin", requested_gpu_hours=1000.0).project == "lab"


def test_a_small_first_request_is_awarded_at_once_as_a_starter(world: Database) -> None:
    view = submit(world, requested_gpu_hours=100.0, gpu_model=None)
    proposal = view.proposal
    assert (proposal.state, proposal.decision_note) == (
        "awarded",
        "auto-approved starter allocation",
    )
    assert (proposal.decided_at, view.allocation) == (NOW, "lab-r1")
    with world.read() as s:
        allocation = s.scalars(select(Allocation).where(Allocation.name == "lab-r1")).one()
        assert (allocation.valid_from, allocation.valid_to) == (NOW, NOW + 90 * DAY)
        assert (allocation.quota_gpus, allocation.gpu_model, allocation.created_by) == (
            0,
            None,
            "auto",
        )
        (entry,) = ledger.entries_of(s, allocation.id)
    assert (entry.kind, entry.gpu_s, entry.actor) == ("award", 100 * H, "auto")

    # A second small request while the starter runs overlaps it: it waits for a person.
    waiting = submit(world, requested_gpu_hours=50.0)
    assert (waiting.proposal.state, waiting.allocation) == ("submitted", None)


def test_rejecting_needs_a_note_and_withdrawing_an_owner(world: Database) -> None:
    pid = submit(world).proposal.id
    with world.session() as s:
        with pytest.raises(InvalidInput) as no_note:
            reject(s, who(s, "admin"), proposal_id=pid, note=" ", now=NOW)
        assert no_note.value.field == "note"
        with pytest.raises(PermissionDenied):
            reject(s, who(s, "owen"), proposal_id=pid, note="no", now=NOW)
        rejected = reject(s, who(s, "admin"), proposal_id=pid, note="out of scope", now=NOW)
    assert (rejected.proposal.state, rejected.proposal.decision_note) == (
        "rejected",
        "out of scope",
    )

    other = submit(world).proposal.id
    with world.session() as s:
        assign_reviewer(s, who(s, "admin"), proposal_id=other, reviewer="rita", now=NOW)
    for name in ["alice", "rita"]:  # a member, and the assigned reviewer
        with world.session() as s, pytest.raises(PermissionDenied):
            withdraw(s, who(s, name), proposal_id=other, now=NOW)
    with world.session() as s:
        withdrawn = withdraw(s, who(s, "owen"), proposal_id=other, now=NOW)
    assert (withdrawn.proposal.state, withdrawn.proposal.decision_note) == (
        "withdrawn",
        "withdrawn by owen",
    )
    with pytest.raises(Conflict):
        award_it(world, other)
    with world.session() as s, pytest.raises(Conflict):
        review(s, who(s, "rita"), proposal_id=other, score=3, comment="late", now=NOW)


def test_each_caller_sees_only_the_proposals_they_may(world: Database) -> None:
    lab = submit(world).proposal.id
    nlp = submit(world, project="nlp", user="rex").proposal.id
    with world.session() as s:
        assign_reviewer(s, who(s, "admin"), proposal_id=nlp, reviewer="rita", now=NOW)
        create_allocation(
            s,
            who(s, "admin"),
            project="shop",
            programme="startup",
            gpu_hours=10.0,
            valid_from=NOW,
            valid_to=NOW + DAY,
            reason="seed",
            now=NOW,
        )

    with world.read() as s:
        listed = {
            name: [v.proposal.id for v in list_proposals(s, who(s, name))]
            for name in ["admin", "olga", "owen", "vera", "rex", "rita", "bob", "fiona"]
        }
        assert list_proposals(s, who(s, "admin"), project="nlp")[0].proposal.id == nlp
        assert list_proposals(s, who(s, "admin"), state=ProposalState.AWARDED) == []
        for name, pid in [("bob", lab), ("rita", lab), ("fiona", nlp), ("owen", nlp)]:
            with pytest.raises(NotFound) as hidden:
                get_proposal(s, who(s, name), pid)
            assert hidden.value.field == "proposal_id"
            assert hidden.value.message == f"proposal {pid} not found"
        with pytest.raises(NotFound) as missing:
            get_proposal(s, who(s, "bob"), 999)
        assert missing.value.message == "proposal 999 not found"
        with pytest.raises(NotFound):
            list_proposals(s, who(s, "bob"), project="lab")
        assert s.scalar(select(LedgerEntry.kind).where(LedgerEntry.reason == "seed")) == (
            EntryKind.AWARD.value
        )
    assert listed == {
        "admin": [lab, nlp],
        "olga": [],  # operators see every project, but not its proposals
        "owen": [lab],
        "vera": [lab],
        "rex": [nlp],
        "rita": [nlp],  # assigned to her
        "bob": [],
        "fiona": [],
    }
