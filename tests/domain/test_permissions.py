"""The permission matrix and the one check over it, without a database: every action has a
rule, roles combine as docs/permissions.md says, and a refusal is a 404 or a 403 as documented.
The same matrix through the real API, cell by cell: tests/api/test_permission_matrix.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.domain.permissions import (
    FACILITY_ROLES,
    MATRIX,
    PROJECT_ROLES,
    Action,
    Role,
    allowed,
    as_markdown,
    who_may,
)
from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import NotFound, PermissionDenied
from aifactory.services.principal import Principal

DOC = Path(__file__).parents[2] / "docs" / "permissions.md"
P, Q = 1, 2  # two projects


def someone(facility: FacilityRole = FacilityRole.USER, **memberships: ProjectRole) -> Principal:
    """A principal with `facility` and memberships given as p=…, q=…."""
    ids = {"p": P, "q": Q}
    return Principal(
        user_id=7,
        name="x",
        facility_role=facility,
        memberships={ids[k]: role for k, role in memberships.items()},
    )


def holding(role: Role) -> Principal:
    """Someone whose only role is `role` (a project role: in project P)."""
    if role.in_project:
        return someone(p=ProjectRole(role.value))
    return someone(FacilityRole(role.value))


def test_every_action_has_a_rule_that_reads_in_the_doc_and_in_a_refusal() -> None:
    assert set(MATRIX) == set(Action)
    for action, rule in MATRIX.items():
        assert rule.roles, action
        assert rule.why, action
        assert rule.why.strip() == rule.why, action
        assert "|" not in rule.why, action  # one Markdown cell
        assert "\n" not in rule.why, action
        assert rule.why[0].islower(), action  # it follows "only … may"


def test_the_roles_are_the_facility_and_project_roles() -> None:
    assert {Role.of_facility(r) for r in FacilityRole} - {None} == FACILITY_ROLES
    assert Role.of_facility(FacilityRole.USER) is None
    assert {Role.of_project(r) for r in ProjectRole} == PROJECT_ROLES
    assert set(Role) == FACILITY_ROLES | PROJECT_ROLES
    assert not FACILITY_ROLES & PROJECT_ROLES


def test_admins_may_do_everything_but_step_into_someones_session() -> None:
    """A session runs as the one who started it, with what they opened in it: an admin
    stops one (JOB_CANCEL) but does not work in it."""
    personal = {Action.SESSION_USE}
    assert all(Role.ADMIN in rule.roles for a, rule in MATRIX.items() if a not in personal)
    assert all(Role.ADMIN not in MATRIX[a].roles for a in personal)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_each_cell_is_what_one_role_alone_may(role: Role, action: Action) -> None:
    in_row = role in MATRIX[action].roles
    assert holding(role).may(action, P) is in_row
    assert allowed(action, frozenset({role})) is in_row


def test_a_request_holds_the_facility_role_and_the_role_in_the_objects_project() -> None:
    operator_and_member = someone(FacilityRole.OPERATOR, p=ProjectRole.MEMBER)

    assert operator_and_member.roles(P) == {Role.OPERATOR, Role.MEMBER}
    assert operator_and_member.roles(Q) == {Role.OPERATOR}
    assert operator_and_member.roles() == {Role.OPERATOR}
    assert operator_and_member.may(Action.JOB_SUBMIT, P)  # as a member
    assert not operator_and_member.may(Action.JOB_SUBMIT, Q)  # an operator never acts as a tenant
    assert operator_and_member.may(Action.JOB_CANCEL, Q)  # as an operator, anywhere
    assert someone().roles(P) == frozenset()


def test_facility_wide_actions_look_at_the_facility_role_alone() -> None:
    owner = someone(p=ProjectRole.OWNER)

    assert owner.may(Action.MEMBER_MANAGE, P)
    assert not owner.may(Action.MEMBER_MANAGE)  # no project: the membership does not count
    assert not owner.may(Action.PROJECT_CREATE, P)
    assert someone(FacilityRole.ADMIN).may(Action.PROJECT_CREATE)


def test_roles_do_not_rank() -> None:
    """An owner may do what a member may only where the row says so: audit.read has owner and
    member but not viewer; member.manage owner but not member."""
    viewer, member, owner = (someone(p=r) for r in ProjectRole.__members__.values())
    assert [u.may(Action.AUDIT_READ, P) for u in (viewer, member, owner)] == [False, True, True]
    assert [u.may(Action.MEMBER_MANAGE, P) for u in (viewer, member, owner)] == [
        False,
        False,
        True,
    ]


def test_a_listing_reaches_every_project_for_a_facility_role_in_the_row() -> None:
    mixed = someone(p=ProjectRole.VIEWER, q=ProjectRole.MEMBER)

    assert someone(FacilityRole.OPERATOR).projects_for(Action.JOB_READ) is None
    assert someone(FacilityRole.FINANCE).projects_for(Action.JOB_READ) == []
    assert mixed.projects_for(Action.JOB_READ) == [P, Q]
    assert mixed.projects_for(Action.JOB_SUBMIT) == [Q]
    assert mixed.projects_for(Action.AUDIT_READ) == [Q]
    assert (
        someone(FacilityRole.AUDITOR, p=ProjectRole.VIEWER).projects_for(Action.AUDIT_READ) is None
    )


def test_authorize_allows_silently() -> None:
    someone(p=ProjectRole.MEMBER).authorize(Action.JOB_SUBMIT, P)
    someone(FacilityRole.FINANCE).authorize(Action.INVOICE_ISSUE, P)
    someone(FacilityRole.ADMIN).authorize(Action.USER_CREATE)


def test_whoever_does_not_see_the_project_is_told_it_does_not_exist() -> None:
    stranger = someone(q=ProjectRole.OWNER)
    finance = someone(FacilityRole.FINANCE)

    with pytest.raises(NotFound) as missing:
        stranger.authorize(Action.JOB_CANCEL, P, what="job", field="job_id")
    with pytest.raises(NotFound):
        finance.authorize(Action.JOB_READ, P)  # finance sees money, not projects

    assert (missing.value.message, missing.value.field) == ("job not found", "job_id")


def test_whoever_sees_the_project_is_told_why_not() -> None:
    viewer = someone(p=ProjectRole.VIEWER)
    operator = someone(FacilityRole.OPERATOR)

    with pytest.raises(PermissionDenied) as refused:
        viewer.authorize(Action.JOB_SUBMIT, P)
    with pytest.raises(PermissionDenied):
        operator.authorize(Action.JOB_SUBMIT, P)

    assert refused.value.message == (
        "only admin, owner or member may submit jobs charged to the project "
        "(your roles here: viewer)"
    )


def test_one_shown_the_object_is_told_why_not_even_without_the_project() -> None:
    reviewer = someone(FacilityRole.REVIEWER)  # e.g. of a proposal assigned to them

    with pytest.raises(NotFound):
        reviewer.authorize(Action.PROPOSAL_WITHDRAW, P)
    with pytest.raises(PermissionDenied):
        reviewer.authorize(Action.PROPOSAL_WITHDRAW, P, seen=True)


def test_facility_wide_refusals_name_the_facility_role() -> None:
    with pytest.raises(PermissionDenied) as refused:
        someone(p=ProjectRole.OWNER).authorize(Action.USER_CREATE)

    assert refused.value.message == (
        "only admin may create users and set facility roles (your facility role: user)"
    )


def test_an_action_only_facility_roles_may_do_is_refused_before_any_lookup() -> None:
    owner = someone(p=ProjectRole.OWNER)

    with pytest.raises(PermissionDenied):
        owner.refuse_early(Action.ALLOCATION_ADJUST)
    owner.refuse_early(Action.MEMBER_MANAGE)  # a project role may: the object decides
    someone().refuse_early(Action.MEMBER_MANAGE)
    someone(FacilityRole.FINANCE).refuse_early(Action.ALLOCATION_ADJUST)


def test_who_may_lists_the_row_in_role_order() -> None:
    assert who_may(Action.USER_CREATE) == "admin"
    assert who_may(Action.AUDIT_VERIFY) == "admin or auditor"
    assert who_may(Action.JOB_CANCEL) == "admin, operator, owner or member"


def test_the_markdown_table_has_a_row_per_action_and_a_column_per_role() -> None:
    lines = as_markdown().splitlines()

    assert lines[0] == (
        "| action | admin | operator | reviewer | finance | auditor | owner | member | viewer "
        "| what it is |"
    )
    assert len(lines) == 2 + len(Action)
    row = next(line for line in lines if line.startswith("| `invoice.issue` |"))
    assert row.split("|")[2:10] == [" ✓ ", "  ", "  ", " ✓ ", "  ", "  ", "  ", "  "]


def test_docs_permissions_md_holds_the_matrix_as_the_code_has_it() -> None:
    """Regenerate the table with `aifactory permissions --markdown` when the matrix changes."""
    doc = DOC.read_text(encoding="utf-8")
    table = doc[doc.index("| action |") :]
    assert table.rstrip("\n") == as_markdown().rstrip("\n")
