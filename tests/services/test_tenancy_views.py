"""What the faces get from services.tenancy: projects with their organisation and the caller's
role, members by name, the caller with their default project — and the same refusals."""

from __future__ import annotations

import pytest

from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.errors import NotFound, PermissionDenied
from aifactory.services.tenancy import (
    MemberView,
    add_member,
    list_members,
    list_organisations,
    list_project_views,
    list_users,
    me,
    project_view,
    set_default_project,
)
from aifactory.store.db import Database
from tests.services.accounting_world import T0, build_world, who


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    return db


def test_a_member_sees_their_projects_with_organisation_and_role(world: Database) -> None:
    with world.read() as s:
        alice = list_project_views(s, who(s, "alice"))
        rex = list_project_views(s, who(s, "rex"))
        everyone = list_project_views(s, who(s, "olga"))
        orgs = [o.name for o in list_organisations(s, who(s, "alice"))]

    assert [(p.name, p.organisation, p.organisation_kind, p.role) for p in alice] == [
        ("lab", "uva", OrgKind.UNIVERSITY, ProjectRole.MEMBER)
    ]
    assert alice[0].created_at == T0
    assert [(p.name, p.role) for p in rex] == [("nlp", ProjectRole.OWNER)]
    assert [p.name for p in everyone] == ["default", "lab", "nlp", "shop"]  # by id
    assert {p.role for p in everyone} == {None}  # an operator is a member of none
    assert orgs == ["uva"]


def test_only_the_projects_where_the_caller_may_act(world: Database) -> None:
    with world.read() as s:
        vera = list_project_views(s, who(s, "vera"), may=Action.PROPOSAL_SUBMIT)
        owen = list_project_views(s, who(s, "owen"), may=Action.PROPOSAL_SUBMIT)

    assert vera == []  # a viewer of lab may not apply for it
    assert [p.name for p in owen] == ["lab"]


def test_one_project_and_its_members_exist_only_for_those_who_see_it(world: Database) -> None:
    with world.read() as s:
        lab = project_view(s, who(s, "vera"), "lab")
        members = list_members(s, who(s, "vera"), project="lab")
        with pytest.raises(NotFound) as hidden:
            project_view(s, who(s, "bob"), "lab")
        with pytest.raises(NotFound):
            list_members(s, who(s, "bob"), project="lab")

    assert (lab.name, lab.organisation, lab.role) == ("lab", "uva", ProjectRole.VIEWER)
    assert members == [
        MemberView("alice", ProjectRole.MEMBER),
        MemberView("owen", ProjectRole.OWNER),
        MemberView("vera", ProjectRole.VIEWER),
    ]
    assert hidden.value.field == "project"


def test_users_are_listed_to_admins_only(world: Database) -> None:
    with world.read() as s:
        users = list_users(s, who(s, "admin"))
        with pytest.raises(PermissionDenied):
            list_users(s, who(s, "owen"))

    assert ("rita", FacilityRole.REVIEWER) in [(u.name, u.facility_role) for u in users]


def test_me_and_a_new_default_project(world: Database) -> None:
    with world.session() as s:
        before = me(s, who(s, "owen"))
        add_member(s, who(s, "rex"), project="nlp", user="owen", role=ProjectRole.MEMBER, now=T0)
    with world.session() as s:
        after = set_default_project(s, who(s, "owen"), project="nlp")
        with pytest.raises(NotFound):
            set_default_project(s, who(s, "owen"), project="shop")
    with world.read() as s:
        again = me(s, who(s, "owen"))

    assert (before.name, before.facility_role, before.default_project) == (
        "owen",
        FacilityRole.USER,
        "lab",
    )
    assert [p.name for p in before.projects] == ["lab"]
    assert after.default_project == again.default_project == "nlp"
    assert [(p.name, p.role) for p in after.projects] == [
        ("lab", ProjectRole.OWNER),
        ("nlp", ProjectRole.MEMBER),
    ]
