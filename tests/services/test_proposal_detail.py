"""One proposal with what acting on it needs: the applicant's organisation, the caller's own
review, and who would be in conflict of interest (a member of any project of that organisation)
— shown before anyone assigns or reviews."""

from __future__ import annotations

from typing import Any

import pytest

from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import NotFound
from aifactory.services.proposal_detail import Candidate, proposal_detail
from aifactory.services.proposals import assign_reviewer, review, submit_proposal
from aifactory.services.tenancy import add_member
from aifactory.store.db import Database
from tests.services.accounting_world import T0, build_world, who

NOW = T0 + 3600.0


@pytest.fixture
def proposal(db: Database) -> int:
    """lab's (uva) proposal to r1, assigned to rita, who reviewed it (4); reviewer rex owns nlp,
    uva's other project."""
    build_world(db)
    asked: dict[str, Any] = {"title": "LLM", "abstract": "A.", "justification": "J."}
    with db.session() as s:
        view = submit_proposal(
            s, who(s, "owen"), call="r1", project="lab", requested_gpu_hours=500.0, now=NOW, **asked
        )
        assign_reviewer(s, who(s, "admin"), proposal_id=view.proposal.id, reviewer="rita", now=NOW)
        review(s, who(s, "rita"), proposal_id=view.proposal.id, score=4, comment="Good.", now=NOW)
    return view.proposal.id


def test_an_admin_sees_the_candidates_with_the_conflicted_marked(
    db: Database, proposal: int
) -> None:
    with db.read() as s:
        detail = proposal_detail(s, who(s, "admin"), proposal)

    assert (detail.view.project, detail.organisation, detail.mean_score) == ("lab", "uva", 4.0)
    assert (detail.my_review, detail.my_conflict) == (None, False)
    assert detail.candidates == (  # by user id; admins may review too
        Candidate("admin", FacilityRole.ADMIN, conflict=False, assigned=False),
        Candidate("rita", FacilityRole.REVIEWER, conflict=False, assigned=True),
        Candidate("rex", FacilityRole.REVIEWER, conflict=True, assigned=False),
    )


def test_a_reviewer_sees_their_own_review_and_a_conflict_that_arose_later(
    db: Database, proposal: int
) -> None:
    with db.session() as s:
        add_member(s, who(s, "admin"), project="nlp", user="rita", role=ProjectRole.VIEWER, now=NOW)
    with db.read() as s:
        detail = proposal_detail(s, who(s, "rita"), proposal)

    assert detail.my_review is not None
    assert (detail.my_review.reviewer, detail.my_review.score) == ("rita", 4)
    assert detail.my_conflict
    assert detail.candidates == ()  # only those who assign reviewers see them


def test_the_applicant_sees_scores_and_no_candidates_and_others_see_nothing(
    db: Database, proposal: int
) -> None:
    with db.read() as s:
        owen = proposal_detail(s, who(s, "owen"), proposal)
        with pytest.raises(NotFound):
            proposal_detail(s, who(s, "bob"), proposal)

    assert [(r.reviewer, r.score) for r in owen.view.reviews] == [(None, 4)]
    assert (owen.candidates, owen.my_review, owen.my_conflict) == ((), None, True)
