"""Federated sign-in's rules over a real database: a first sign-in provisions, later ones find
the same user; entitlements add, change and remove only the memberships they granted; an
attempt is used once; approvals; linking an identity to an existing account."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from aifactory.domain.federated_identity import Claims
from aifactory.domain.tenancy import OrgKind, ProjectRole
from aifactory.errors import Conflict, PermissionDenied, Unauthenticated
from aifactory.services.auth import principal_of
from aifactory.services.bootstrap import bootstrap
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.cli_tokens import issue_cli_token
from aifactory.services.federated.oidc import Authorization
from aifactory.services.federated.providers import ProviderConfig, RuleConfig
from aifactory.services.tenancy import add_member
from aifactory.store.db import Database
from aifactory.store.models import (
    AuditEvent,
    Member,
    Organisation,
    Project,
    SignInRequest,
    User,
    UserIdentity,
)

NOW = 1_800_000_000.0
ISSUER = "https://idp.example.nl"
CONFIG = ProviderConfig(
    name="surf",
    label="SURFconext",
    issuer=ISSUER,
    client_id="portal",
    client_secret="s3cret",
    organisation_kinds={"uva.nl": OrgKind.UNIVERSITY},
    entitlements=[
        RuleConfig(
            match=r"urn:mace:surf\.nl:aifactory:(?P<project>[^:]+):(?P<role>owner|member|viewer)",
            projects=["dutch-llm", "speech", "nope"],
        )
    ],
)
ANNA = Claims(
    issuer=ISSUER,
    subject="uva-anna",
    name="Anna de Vries",
    email="a.devries@uva.nl",
    email_verified=True,
    preferred_username="anna",
    home_organisation="uva.nl",
)


def entitled(claims: Claims, *entitlements: str) -> Claims:
    granted = tuple(f"urn:mace:surf.nl:aifactory:{e}" for e in entitlements)
    return replace(claims, entitlements=granted)


@pytest.fixture
def facility(db: Database) -> Database:
    with db.session() as session:
        bootstrap(session, now=NOW)
        org = Organisation(name="surf.nl", kind="research_institute", created_at=NOW)
        session.add(org)
        session.flush()
        for name in ("dutch-llm", "speech"):
            session.add(Project(name=name, organisation_id=org.id, created_at=NOW))
    return db


def roles(db: Database, user: str) -> dict[str, tuple[str, str | None]]:
    with db.read() as session:
        rows = session.execute(
            select(Project.name, Member.role, Member.entitled_by)
            .join(Member, Member.project_id == Project.id)
            .join(User, User.id == Member.user_id)
            .where(User.name == user)
        )
        return {project: (role, by) for project, role, by in rows}


def test_a_first_sign_in_provisions_the_person_and_a_later_one_finds_them(
    facility: Database,
) -> None:
    with facility.session() as session:
        user = federated.sign_in(session, CONFIG, ANNA, now=NOW)
        assert user is not None
        assert (user.name, user.email, user.facility_role) == ("anna", "a.devries@uva.nl", "user")
    with facility.session() as session:
        again = federated.sign_in(session, CONFIG, ANNA, now=NOW + 60)
        assert again is not None
        assert again.name == "anna"
        assert session.scalar(select(UserIdentity.last_sign_in_at)) == NOW + 60
        assert len(session.scalars(select(User).where(User.name.like("anna%"))).all()) == 1
        org = session.scalars(select(Organisation).where(Organisation.name == "uva.nl")).one()
        assert org.kind == "university"
        actions = set(session.scalars(select(AuditEvent.action)))
    assert roles(facility, "anna") == {"anna-pg": ("owner", None)}
    assert {"user.create", "organisation.create", "project.create"} <= actions


def test_the_same_subject_at_another_issuer_is_another_person(facility: Database) -> None:
    with facility.session() as session:
        first = federated.sign_in(session, CONFIG, ANNA, now=NOW)
        other = replace(ANNA, issuer="https://other-idp.nl")
        second = federated.sign_in(session, CONFIG, other, now=NOW)
        assert first is not None
        assert second is not None
        assert (first.name, second.name) == ("anna", "anna-2")


def test_an_institution_the_facility_does_not_serve_is_refused_plainly(
    facility: Database,
) -> None:
    stranger = Claims(ISSUER, "x-1", preferred_username="x", home_organisation="elsewhere.com")
    with facility.session() as session, pytest.raises(Unauthenticated, match=r"elsewhere\.com"):
        federated.sign_in(session, CONFIG, stranger, now=NOW)
    with facility.read() as session:
        assert session.scalars(select(User).where(User.name == "x")).first() is None
    # An entitlement to one of the facility's projects lets them in all the same.
    invited = entitled(stranger, "speech:member")
    with facility.session() as session:
        assert federated.sign_in(session, CONFIG, invited, now=NOW) is not None
    assert roles(facility, "x") == {"speech": ("member", "surf")}


def test_entitlements_follow_the_person_but_leave_what_people_granted(
    facility: Database,
) -> None:
    with facility.session() as session:
        user = federated.sign_in(
            session, CONFIG, entitled(ANNA, "dutch-llm:member", "nope:owner"), now=NOW
        )
        assert user is not None
        speech = session.scalars(select(Project).where(Project.name == "speech")).one()
        session.add(Member(project_id=speech.id, user_id=user.id, role="viewer", created_at=NOW))
    assert roles(facility, "anna") == {
        "anna-pg": ("owner", None),
        "dutch-llm": ("member", "surf"),
        "speech": ("viewer", None),
    }
    with facility.session() as session:
        federated.sign_in(session, CONFIG, entitled(ANNA, "dutch-llm:owner"), now=NOW + 1)
    assert roles(facility, "anna")["dutch-llm"] == ("owner", "surf")
    with facility.session() as session:  # the entitlements are gone: so is what they granted
        federated.sign_in(session, CONFIG, ANNA, now=NOW + 2)
    # …but not a project's last owner, nor what a person granted.
    assert roles(facility, "anna") == {
        "anna-pg": ("owner", None),
        "dutch-llm": ("owner", "surf"),
        "speech": ("viewer", None),
    }


def test_a_role_a_person_set_is_theirs_and_no_sign_in_reverts_it(facility: Database) -> None:
    with facility.session() as session:
        federated.sign_in(session, CONFIG, entitled(ANNA, "dutch-llm:owner"), now=NOW)
        admin = principal_of(
            session, session.scalars(select(User).where(User.name == "admin")).one()
        )
        add_member(
            session, admin, project="dutch-llm", user="admin", role=ProjectRole.OWNER, now=NOW
        )
        add_member(
            session, admin, project="dutch-llm", user="anna", role=ProjectRole.VIEWER, now=NOW
        )
    with facility.session() as session:  # the entitlement still says owner
        federated.sign_in(session, CONFIG, entitled(ANNA, "dutch-llm:owner"), now=NOW + 1)
    assert roles(facility, "anna")["dutch-llm"] == ("viewer", None)


def test_an_entitled_membership_is_removed_when_another_owner_remains(
    facility: Database,
) -> None:
    with facility.session() as session:
        federated.sign_in(session, CONFIG, entitled(ANNA, "dutch-llm:member"), now=NOW)
    with facility.session() as session:
        federated.sign_in(session, CONFIG, ANNA, now=NOW + 1)
    assert "dutch-llm" not in roles(facility, "anna")


def test_an_attempt_is_used_once_and_expires(facility: Database) -> None:
    attempt = Authorization("https://idp/auth", "state-1", "nonce-1", "verifier-1")
    with facility.session() as session:
        federated.begin(session, provider="surf", authorization=attempt, now=NOW)
    with facility.session() as session:
        with pytest.raises(Unauthenticated, match="already used"):
            federated.take(session, provider="other", state="state-1", now=NOW)
        taken = federated.take(session, provider="surf", state="state-1", now=NOW + 1)
        assert (taken.nonce, taken.code_verifier) == ("nonce-1", "verifier-1")
    with facility.session() as session, pytest.raises(Unauthenticated, match="already used"):
        federated.take(session, provider="surf", state="state-1", now=NOW + 2)
    late = Authorization("https://idp/auth", "state-2", "n", "v")
    with facility.session() as session:
        federated.begin(session, provider="surf", authorization=late, now=NOW)
    with facility.session() as session, pytest.raises(Unauthenticated, match="expired"):
        federated.take(session, provider="surf", state="state-2", now=NOW + 601)


def test_with_approval_a_first_sign_in_waits_for_an_admin(facility: Database) -> None:
    config = CONFIG.model_copy(update={"approval": "admin"})
    with facility.session() as session:
        assert federated.sign_in(session, config, ANNA, now=NOW) is None
        assert federated.sign_in(session, config, ANNA, now=NOW + 1) is None  # one request
        waiting = issue_cli_token(session, config, ANNA, now=NOW, source=None)
        assert waiting is None
        assert len(session.scalars(select(SignInRequest)).all()) == 1
        assert session.scalars(select(User).where(User.name == "anna")).first() is None
        admin = principal_of(session, session.scalars(select(User)).one())
    with facility.session() as session:
        request = federated.list_requests(session, admin)[0]
        assert (request.name, request.home_organisation, request.outcome) == (
            "Anna de Vries",
            "uva.nl",
            None,
        )
        decided = federated.decide(
            session, admin, {"surf": config}, request.id, approve=True, now=NOW
        )
        assert decided.outcome == "approved"
        with pytest.raises(Conflict, match="already approved"):
            federated.decide(session, admin, {"surf": config}, request.id, approve=True, now=NOW)
    with facility.session() as session:
        user = federated.sign_in(session, config, ANNA, now=NOW + 2)
        assert user is not None
        assert user.name == "anna"
        anna = principal_of(session, user)
        with pytest.raises(PermissionDenied):
            federated.list_requests(session, anna)


def test_a_rejected_person_is_refused_from_then_on(facility: Database) -> None:
    config = CONFIG.model_copy(update={"approval": "admin"})
    with facility.session() as session:
        federated.sign_in(session, config, ANNA, now=NOW)
        admin = principal_of(session, session.scalars(select(User)).one())
        request_id = session.scalars(select(SignInRequest.id)).one()
        federated.decide(session, admin, {"surf": config}, request_id, approve=False, now=NOW)
    with facility.session() as session, pytest.raises(Unauthenticated, match="declined"):
        federated.sign_in(session, config, ANNA, now=NOW + 1)


def test_an_identity_links_to_one_account_only(facility: Database) -> None:
    with facility.session() as session:
        admin = session.scalars(select(User)).one()
        federated.link(session, CONFIG, admin.id, ANNA, now=NOW)
        federated.link(session, CONFIG, admin.id, ANNA, now=NOW)  # again: nothing changes
        assert federated.identities_of(session, admin.id) == [("surf", "uva-anna")]
        signed = federated.sign_in(session, CONFIG, ANNA, now=NOW)
        assert signed is not None
        assert signed.name == "admin"
        other = User(name="bob", facility_role="user", created_at=NOW)
        session.add(other)
        session.flush()
        with pytest.raises(Conflict, match="another account"):
            federated.link(session, CONFIG, other.id, ANNA, now=NOW)


def test_a_cli_sign_in_gets_a_token_that_lives_an_hour(facility: Database) -> None:
    with facility.session() as session:
        issued = issue_cli_token(session, CONFIG, ANNA, now=NOW, source="10.0.0.1")
        assert issued is not None
        assert issued.user == "anna"
        assert issued.plain.startswith("afy_")
        assert issued.row.expires_at == NOW + 3600
        assert issued.row.name == "sso-surf"
