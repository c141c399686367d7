"""Access modes through the services: calls made with a mode and its terms, a Playground
request awarded at once within the ceiling and the call's budget (or refused, storing nothing),
ceilings and durations on reviewed modes, each proposal's deadline and lateness, and a
programme's track agreeing with its prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from aifactory.domain.access_modes import AccessMode, CallTerms, Funding, Track
from aifactory.domain.tenancy import OrgKind
from aifactory.errors import InvalidInput
from aifactory.services.programmes import ProgrammeSpec, create_call, create_programme, list_calls
from aifactory.services.proposals import ProposalView, award, list_proposals, submit_proposal
from aifactory.services.reports import funder_report
from aifactory.store.db import Database
from aifactory.store.models import Allocation, Proposal
from tests.services.accounting_world import DAY, T0, build_world, who

NOW = T0 + 3600.0


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def make_call(db: Database, name: str, terms: CallTerms, budget: float = 500.0) -> None:
    with db.session() as s:
        create_call(
            s,
            who(s, "admin"),
            name=name,
            programme="research",
            title=f"{terms.mode} call",
            opens_at=T0 - DAY,
            closes_at=T0 + 30 * DAY,
            budget_gpu_hours=budget,
            terms=terms,
            now=T0,
        )


def submit(db: Database, call: str, hours: float, project: str = "lab", **more: Any) -> Any:
    owner = {"lab": "owen", "nlp": "rex"}[project]
    with db.session() as s:
        return submit_proposal(
            s,
            who(s, owner),
            call=call,
            project=project,
            title="Try a model",
            abstract="We try.",
            justification="To see.",
            requested_gpu_hours=hours,
            now=NOW,
            **more,
        )


def test_a_call_keeps_its_mode_and_terms_with_the_modes_defaults(world: Database) -> None:
    make_call(world, "fl", CallTerms(AccessMode.FAST_LANE, funding=Funding.EU))
    with world.session() as s:
        (found,) = [c for c in list_calls(s, who(s, "owen"), now=NOW) if c.call.name == "fl"]
    assert found.call.terms == CallTerms(AccessMode.FAST_LANE, 50_000.0, 30, 90, (), Funding.EU)


def test_an_existing_call_is_a_plain_reviewed_one(world: Database) -> None:
    with world.session() as s:
        (r1,) = [c for c in list_calls(s, who(s, "owen"), now=NOW) if c.call.name == "r1"]
    assert r1.call.terms == CallTerms()
    view = submit(world, "r1", 300.0)
    assert (view.mode, view.deadline, view.late(NOW + 365 * DAY)) == ("reviewed", None, False)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        (CallTerms(AccessMode.PLAYGROUND), "ceiling_gpu_hours"),
        (CallTerms(AccessMode.FAST_LANE, ceiling_gpu_hours=60_000.0), "ceiling_gpu_hours"),
        (CallTerms(AccessMode.LARGE_SCALE, max_days=400), "max_days"),
    ],
)
def test_a_call_with_terms_its_mode_forbids_is_refused(
    world: Database, terms: CallTerms, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        make_call(world, "bad", terms, budget=100_000.0)
    assert refused.value.field == field


def test_a_playground_request_within_the_ceiling_is_awarded_at_once(world: Database) -> None:
    make_call(world, "pg", CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=200.0))
    view = submit(world, "pg", 150.0, requested_days=60)
    assert (view.proposal.state, view.mode, view.allocation) == ("awarded", "playground", "lab-pg")
    assert view.answered_at == NOW
    assert not view.late(NOW + 30 * DAY)
    with world.session() as s:
        allocation = s.scalars(select(Allocation).where(Allocation.name == "lab-pg")).one()
        assert (allocation.award_gpu_s, allocation.created_by) == (150 * 3600, "auto")
        assert (allocation.valid_from, allocation.valid_to) == (NOW, NOW + 60 * DAY)


def test_a_playground_award_lasts_the_calls_longest_unless_asked(world: Database) -> None:
    make_call(world, "pg", CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=200.0))
    submit(world, "pg", 100.0)
    with world.session() as s:
        allocation = s.scalars(select(Allocation).where(Allocation.name == "lab-pg")).one()
        assert allocation.valid_to - allocation.valid_from == 90 * DAY


@pytest.mark.parametrize(
    ("first", "then", "words"),
    [
        (None, 250.0, "at most 200 GPU-h"),  # over the ceiling
        (200.0, 150.0, "has 100 GPU-h left"),  # over what the call has left
    ],
)
def test_a_playground_request_it_cannot_award_is_refused_and_not_stored(
    world: Database, first: float | None, then: float, words: str
) -> None:
    make_call(world, "pg", CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=200.0), 300.0)
    if first is not None:
        submit(world, "pg", first, project="nlp")
    with pytest.raises(InvalidInput) as refused:
        submit(world, "pg", then)
    assert refused.value.field == "requested_gpu_hours"
    assert words in refused.value.message
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Proposal)) == (first is not None)


def test_a_second_playground_award_while_one_is_held_names_the_project(world: Database) -> None:
    make_call(world, "pg", CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=100.0))
    submit(world, "pg", 50.0)
    with pytest.raises(InvalidInput) as refused:
        submit(world, "pg", 50.0)
    assert refused.value.field == "project"


def test_fast_lane_caps_requests_and_awards_and_fixes_durations(world: Database) -> None:
    terms = CallTerms(AccessMode.FAST_LANE, ceiling_gpu_hours=400.0)
    make_call(world, "fl", terms, budget=1000.0)
    with pytest.raises(InvalidInput) as over:
        submit(world, "fl", 401.0)
    assert over.value.field == "requested_gpu_hours"
    view = submit(world, "fl", 300.0)
    assert view.proposal.state == "submitted"  # a light review: a person decides
    with world.session() as s, pytest.raises(InvalidInput) as too_long:
        award(
            s,
            who(s, "admin"),
            proposal_id=view.proposal.id,
            gpu_hours=300.0,
            valid_from=NOW,
            valid_to=NOW + 180 * DAY,
            now=NOW,
        )
    assert too_long.value.field == "valid_to"


def test_a_proposal_shows_its_deadline_and_is_late_past_it(world: Database) -> None:
    make_call(world, "fl", CallTerms(AccessMode.FAST_LANE))
    view: ProposalView = submit(world, "fl", 100.0)
    assert view.deadline is not None
    assert view.deadline > NOW
    assert not view.late(view.deadline - 1)
    assert view.late(view.deadline)
    with world.session() as s:
        (listed,) = [
            p for p in list_proposals(s, who(s, "owen")) if p.proposal.id == view.proposal.id
        ]
    assert (listed.mode, listed.deadline) == ("fast_lane", view.deadline)


@pytest.mark.parametrize(("track", "subsidy_pct"), [(Track.INNOVATION, 0), (Track.INDUSTRY, 100)])
def test_a_programmes_track_must_agree_with_its_prices(
    world: Database, track: Track, subsidy_pct: int
) -> None:
    spec = ProgrammeSpec(
        title="AI Factory",
        eligible_kinds=(OrgKind.COMPANY,),
        gpu_tariffs={"*": Decimal("2.50")},
        capacity_share=0.01,
        subsidy_pct=subsidy_pct,
        track=track,
    )
    with world.session() as s, pytest.raises(InvalidInput) as refused:
        create_programme(s, who(s, "admin"), name="aif", spec=spec, now=T0)
    assert refused.value.field == "track"


def test_the_funder_report_counts_time_to_access_per_mode(world: Database) -> None:
    make_call(world, "pg", CallTerms(AccessMode.PLAYGROUND, ceiling_gpu_hours=200.0))
    make_call(world, "fl", CallTerms(AccessMode.FAST_LANE, funding=Funding.EU))
    submit(world, "pg", 100.0)
    waiting = submit(world, "fl", 100.0, project="nlp")
    with world.session() as s:
        award(
            s,
            who(s, "admin"),
            proposal_id=waiting.proposal.id,
            gpu_hours=100.0,
            valid_from=NOW + 20 * DAY,  # access when the allocation starts: past the deadline
            valid_to=NOW + 50 * DAY,
            now=NOW,
        )
        report = funder_report(s, who(s, "admin"), start=T0, end=T0 + 60 * DAY, grid_g_per_kwh=0.0)
    playground, lane = report.time_to_access["playground"], report.time_to_access["fast_lane"]
    assert (playground.proposals, playground.within, playground.median_working_days) == (1, 1, 0)
    assert (lane.proposals, lane.within, lane.service_days) == (1, 0, 4)
