"""Sessions as a service (services.interactive): a session is a job of its project; who may
open it; the one-use ticket and the cookie it is traded for, which end with what they came
from; what a running session costs so far."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.domain.interactive import Kind, SessionSpec
from aifactory.domain.jobs import JobState
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.services import interactive as sessions
from aifactory.services.auth import hash_token, issue_token, principal_of
from aifactory.services.jobs import cancel_job
from aifactory.services.login import close_session, open_session
from aifactory.services.principal import Principal
from aifactory.services.tenancy import (
    add_member,
    create_organisation,
    create_project,
    create_user,
    user_by_name,
)
from aifactory.store.db import Database
from aifactory.store.models import InteractiveSession, Job, WebSession
from tests.conftest import seed_facility
from tests.services.money_rows import a_programme, an_allocation

T0 = 1_767_225_600.0


def who(db: Database, name: str) -> Principal:
    with db.read() as s:
        return principal_of(s, user_by_name(s, name))


@pytest.fixture
def world(db: Database) -> Database:
    """Project `lab` (owen owner, mia and max members, paying from a programme); project `far`
    (eve owner)."""
    seed_facility(db, now=T0 - 86400)
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        create_organisation(s, admin, name="uva", kind=OrgKind.UNIVERSITY, now=T0)
        for name in ("owen", "mia", "max", "eve"):
            create_user(s, admin, name=name, email=None, facility_role=FacilityRole.USER, now=T0)
        lab = create_project(s, admin, name="lab", organisation="uva", owner="owen", now=T0)
        create_project(s, admin, name="far", organisation="uva", owner="eve", now=T0)
        for name in ("mia", "max"):
            add_member(s, admin, project="lab", user=name, role=ProjectRole.MEMBER, now=T0)
        an_allocation(s, "lab-pilot", project_id=lab.id, programme_id=a_programme(s).id)
    return db


def started(db: Database, user: str = "mia", *, running: bool = True, gpus: int = 1) -> int:
    with db.session() as s:
        view = sessions.start_session(
            s, who(db, user), SessionSpec(project="lab", gpus=gpus), now=T0
        )
        if running:
            job = s.get(Job, view.id)
            assert job is not None
            job.state, job.started_at, job.attempts = JobState.RUNNING.value, T0 + 10, 1
        return view.id


def ticket(db: Database, user: str, job_id: int, **source: int | str | None) -> str:
    with db.session() as s:
        return sessions.open_ticket(s, who(db, user), job_id, now=T0 + 20, **source)  # type: ignore[arg-type]


def cookie(db: Database, plain: str, job_id: int, now: float = T0 + 30) -> str:
    with db.session() as s:
        return sessions.enter(s, plain, job_id, now=now)


def route(db: Database, plain: str, job_id: int, now: float = T0 + 40) -> sessions.Route | None:
    with db.read() as s:
        return sessions.route_by_cookie(s, plain, job_id, now=now)


def test_a_session_is_a_job_of_its_project_running_jupyterlab_on_its_socket(
    world: Database,
) -> None:
    job_id = started(world, running=False)
    with world.read() as s:
        job = s.get(Job, job_id)
        row = s.get(InteractiveSession, job_id)
        assert job is not None
        assert row is not None
        assert job.state == JobState.PENDING.value
        assert job.gpus_per_node == 1
        assert not job.preemptible  # someone works in it
        assert "jupyterlab" in " ".join(job.command)
        assert "--ServerApp.sock=" in job.command[2]
        assert job.env["JUPYTER_TOKEN"] == row.notebook_token
        assert len(row.notebook_token) == 64
        assert row.kind == Kind.JUPYTER.value
        assert row.created_by == "mia"


def test_its_view_says_what_it_costs_so_far_and_how_long_it_has(world: Database) -> None:
    job_id = started(world)
    with world.read() as s:
        view = sessions.show_session(s, who(world, "mia"), job_id, now=T0 + 10 + 3600)
    assert view.time_left_s(T0 + 10 + 3600) == view.time_limit_s - 3600
    assert view.idle_for_s == 3600  # never heard from: idle since its start
    assert view.cull_in_s() == 0
    assert view.cost_cents > 0  # an hour of a GPU at the programme's tariff


def test_bad_idle_timeouts_are_refused_naming_the_field(world: Database) -> None:
    with world.session() as s, pytest.raises(InvalidInput) as refused:
        sessions.start_session(
            s, who(world, "mia"), SessionSpec(project="lab", idle_timeout_s=5), now=T0
        )
    assert refused.value.field == "idle_timeout_s"


def test_who_may_open_a_session(world: Database) -> None:
    job_id = started(world, "mia")
    assert ticket(world, "mia", job_id)  # who started it
    assert ticket(world, "owen", job_id)  # an owner of its project
    for other in ("max", "eve"):  # another member; another project's owner
        with pytest.raises(NotFound):
            ticket(world, other, job_id)
    with pytest.raises(PermissionDenied):
        ticket(world, "admin", job_id)  # an admin stops sessions, but does not work in them


def test_a_session_that_does_not_run_cannot_be_opened(world: Database) -> None:
    job_id = started(world, running=False)
    with pytest.raises(Conflict) as refused:
        ticket(world, "mia", job_id)
    assert "pending" in refused.value.message


def test_a_ticket_is_used_once_within_its_minute_for_its_session_only(world: Database) -> None:
    job_id = started(world)
    other = started(world)
    plain = ticket(world, "mia", job_id)
    with pytest.raises(NotFound):
        cookie(world, plain, other)  # another session's door
    with world.read() as s:  # what it opens, said before it is used, and not used by it
        shown = sessions.ticket_of(s, plain, job_id, now=T0 + 25)
    assert (shown.job_id, shown.project, shown.owner, shown.user) == (job_id, "lab", "mia", "mia")
    pass_ = cookie(world, plain, job_id)
    with pytest.raises(NotFound):
        cookie(world, plain, job_id)  # once
    late = ticket(world, "mia", job_id)
    with pytest.raises(NotFound):
        cookie(world, late, job_id, now=T0 + 20 + sessions.TICKET_S)
    found = route(world, pass_, job_id)
    assert found is not None
    assert found.user == "mia"
    assert (found.job_id, found.attempt) == (job_id, 1)  # its running attempt's server
    assert route(world, pass_, other) is None  # a cookie opens its own session only
    assert route(world, "forged", job_id) is None
    with world.read() as s:
        stored = [p.token_hash for p in s.scalars(select(sessions.SessionPass))]
    assert hash_token(pass_) in stored
    assert pass_ not in stored  # only hashes are kept


def test_a_cookie_ends_with_its_sign_in_its_token_its_session_and_its_rights(
    world: Database,
) -> None:
    job_id = started(world)
    with world.session() as s:
        mia = user_by_name(s, "mia")
        signed = open_session(s, mia, provider="password", source=None, now=T0)
        web_id = s.scalars(select(WebSession.id).where(WebSession.user_id == mia.id)).one()
        token_row, token = issue_token(s, mia, name="cli", now=T0)
    by_web = cookie(world, ticket(world, "mia", job_id, web_session_id=web_id), job_id)
    by_token = cookie(world, ticket(world, "mia", job_id, api_token_hash=hash_token(token)), job_id)
    assert route(world, by_web, job_id) is not None
    assert route(world, by_token, job_id) is not None
    with world.session() as s:
        close_session(s, signed, now=T0 + 35)  # signed out of the portal
        s.get(type(token_row), token_row.id).revoked_at = T0 + 35  # type: ignore[union-attr]
    assert route(world, by_web, job_id) is None
    assert route(world, by_token, job_id) is None
    owners = cookie(world, ticket(world, "owen", job_id), job_id)
    assert route(world, owners, job_id) is not None
    with world.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        cancel_job(s, admin, job_id, now=T0 + 36)  # stopping
        s.get(Job, job_id).state = JobState.CANCELLED.value  # type: ignore[union-attr]
    assert route(world, owners, job_id) is None  # it ended
    assert route(world, owners, job_id, now=T0 + sessions.PASS_S + 31) is None


def test_listing_shows_the_sessions_of_projects_one_sees(world: Database) -> None:
    mine = started(world, "mia")
    with world.read() as s:
        assert [v.id for v in sessions.list_sessions(s, who(world, "max"), now=T0)] == [mine]
        assert sessions.list_sessions(s, who(world, "eve"), now=T0) == []
        with pytest.raises(NotFound):
            sessions.show_session(s, who(world, "eve"), mine, now=T0)
