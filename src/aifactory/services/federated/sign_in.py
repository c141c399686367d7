"""Federated sign-in: the attempts under way, the first sign-in that provisions a person, the
entitlements that follow them, identities linked to accounts, and the admin's approvals.

Invariants: an identity (issuer + subject) signs in as one user only; an attempt is used once
(a replayed state finds nothing); no claim sets a facility role; memberships a sign-in granted
(`Member.entitled_by`) follow the entitlements, memberships a person granted are left alone,
and no sign-in removes a project's last owner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain import federated_identity as identity
from aifactory.domain.federated_identity import Claims
from aifactory.domain.permissions import Action
from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.errors import Conflict, NotFound, Unauthenticated
from aifactory.governance import audit
from aifactory.services.auth import hash_token
from aifactory.services.federated.oidc import Authorization
from aifactory.services.federated.providers import ProviderConfig
from aifactory.services.principal import Principal
from aifactory.services.tenancy import add_membership
from aifactory.store.models import (
    Member,
    Organisation,
    Project,
    SignInAttempt,
    SignInRequest,
    User,
    UserIdentity,
)

ATTEMPT_TTL_S = 600.0  # from the sign-in button to the provider's answer
EXPIRED = "the sign-in was already used, or has expired: please sign in again"


@dataclass(frozen=True, slots=True)
class Attempt:
    nonce: str
    code_verifier: str
    link_user_id: int | None


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    provider: str
    subject: str
    name: str | None
    email: str | None
    home_organisation: str | None
    requested_at: float
    outcome: str | None


def begin(
    session: Session,
    *,
    provider: str,
    authorization: Authorization,
    now: float,
    link_user_id: int | None = None,
) -> None:
    """Keep what finishing this sign-in needs; forget attempts nobody finished."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.expires_at < now))
    session.add(
        SignInAttempt(
            state_hash=hash_token(authorization.state),
            provider=provider,
            nonce=authorization.nonce,
            code_verifier=authorization.code_verifier,
            link_user_id=link_user_id,
            created_at=now,
            expires_at=now + ATTEMPT_TTL_S,
        )
    )


def take(session: Session, *, provider: str, state: str, now: float) -> Attempt:
    """The attempt `state` names, removed: a second use of the same state finds nothing."""
    row = session.get(SignInAttempt, hash_token(state))
    if row is None or row.provider != provider:
        raise Unauthenticated(EXPIRED)
    session.delete(row)
    if row.expires_at <= now:
        raise Unauthenticated(EXPIRED)
    return Attempt(row.nonce, row.code_verifier, row.link_user_id)


def sign_in(session: Session, config: ProviderConfig, claims: Claims, *, now: float) -> User | None:
    """The user `claims` names, provisioned on their first sign-in, their entitled memberships
    brought up to date; None while their first sign-in waits for an admin's approval."""
    user = _linked_user(session, claims)
    if user is None:
        if config.approval == "admin":
            _wait_for_approval(session, config, claims, now=now)
            return None
        user = _provision(session, config, claims, actor=f"sign-in:{config.name}", now=now)
    else:
        session.execute(
            update(UserIdentity)
            .where(UserIdentity.issuer == claims.issuer, UserIdentity.subject == claims.subject)
            .values(last_sign_in_at=now)
        )
    if claims.email and claims.email_verified and user.email != claims.email:
        user.email = claims.email  # the institution's address is the one that reaches them
    follow_entitlements(session, config, user, claims, now=now)
    return user


def link(
    session: Session, config: ProviderConfig, user_id: int, claims: Claims, *, now: float
) -> None:
    """Let `user_id` sign in with this identity too (an existing local account)."""
    owner = _linked_user(session, claims)
    if owner is not None:
        if owner.id == user_id:
            return
        raise Conflict("this identity already signs in to another account", field="provider")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", field="user")
    _add_identity(session, config, user, claims, now=now)
    audit.record(
        session,
        actor=user.name,
        action="identity.link",
        object=f"user:{user.name}",
        at=now,
        detail={"provider": config.name, "issuer": claims.issuer, "subject": claims.subject},
    )


def identities_of(session: Session, user_id: int) -> list[tuple[str, str]]:
    """(provider, subject) of each identity that signs in as this user."""
    rows = session.execute(
        select(UserIdentity.provider, UserIdentity.subject)
        .where(UserIdentity.user_id == user_id)
        .order_by(UserIdentity.id)
    )
    return [(provider, subject) for provider, subject in rows]


def follow_entitlements(
    session: Session, config: ProviderConfig, user: User, claims: Claims, *, now: float
) -> None:
    """Add, change and remove the memberships this provider's entitlements grant."""
    wanted = {g.project: g.role for g in identity.grants(claims.entitlements, config.rules())}
    projects = {p.name: p for p in session.scalars(select(Project).where(Project.name.in_(wanted)))}
    current = {
        m.project_id: m for m in session.scalars(select(Member).where(Member.user_id == user.id))
    }
    actor = f"sign-in:{config.name}"
    for name, role in wanted.items():
        project = projects.get(name)
        if project is None:
            continue  # an entitlement for a project this facility does not have (yet)
        member = current.pop(project.id, None)
        if member is None:
            member = add_membership(session, project, user, role, now=now)
            member.entitled_by = config.name
            _audit_member(session, actor, user, project, role.value, None, now=now)
        elif member.entitled_by == config.name and member.role != role.value:
            if member.role == ProjectRole.OWNER.value and _owners(session, project.id) == 1:
                continue
            before, member.role = member.role, role.value
            _audit_member(session, actor, user, project, role.value, before, now=now)
    for member in current.values():
        if member.entitled_by != config.name:
            continue
        if member.role == ProjectRole.OWNER.value and _owners(session, member.project_id) == 1:
            continue
        project = session.get(Project, member.project_id)
        assert project is not None  # members cascade with their project
        session.delete(member)
        if user.default_project_id == project.id:
            user.default_project_id = None
        _audit_member(session, actor, user, project, None, member.role, now=now)


def list_requests(session: Session, principal: Principal) -> list[RequestView]:
    principal.authorize(Action.USER_CREATE)
    rows = session.scalars(select(SignInRequest).order_by(SignInRequest.id))
    return [_request_view(row) for row in rows]


def decide(
    session: Session,
    principal: Principal,
    configs: dict[str, ProviderConfig],
    request_id: int,
    *,
    approve: bool,
    now: float,
) -> RequestView:
    """An admin's answer to a first sign-in: approving provisions the person at once."""
    principal.authorize(Action.USER_CREATE)
    row = session.get(SignInRequest, request_id)
    if row is None:
        raise NotFound(f"no sign-in request {request_id}", field="request")
    if row.outcome is not None:
        raise Conflict(f"this request was already {row.outcome}", field="request")
    config = configs.get(row.provider)
    if approve and config is None:
        raise Conflict(f"the provider {row.provider!r} is no longer configured", field="request")
    row.outcome = "approved" if approve else "rejected"
    row.decided_at, row.decided_by = now, principal.name
    if approve and config is not None:
        claims = _claims_from(row.claims)
        user = _provision(session, config, claims, actor=principal.name, now=now)
        follow_entitlements(session, config, user, claims, now=now)
    audit.record(
        session,
        actor=principal.name,
        action=f"sign_in_request.{row.outcome}",
        object=f"sign_in_request:{row.id}",
        at=now,
        source=principal.source,
        detail={"provider": row.provider, "subject": row.subject},
    )
    return _request_view(row)


def _linked_user(session: Session, claims: Claims) -> User | None:
    return session.scalars(
        select(User)
        .join(UserIdentity, UserIdentity.user_id == User.id)
        .where(UserIdentity.issuer == claims.issuer, UserIdentity.subject == claims.subject)
    ).first()


def _wait_for_approval(
    session: Session, config: ProviderConfig, claims: Claims, *, now: float
) -> None:
    row = session.scalars(
        select(SignInRequest).where(
            SignInRequest.issuer == claims.issuer, SignInRequest.subject == claims.subject
        )
    ).first()
    if row is not None and row.outcome == "rejected":
        raise Unauthenticated("the facility declined your request to sign in")
    if row is None:
        session.add(
            SignInRequest(
                provider=config.name,
                issuer=claims.issuer,
                subject=claims.subject,
                claims=dataclasses.asdict(claims),
                requested_at=now,
            )
        )
        audit.record(
            session,
            actor=f"sign-in:{config.name}",
            action="sign_in_request.create",
            object=f"identity:{claims.subject}",
            at=now,
            detail={"issuer": claims.issuer, "home": claims.home_organisation},
        )


def _provision(
    session: Session, config: ProviderConfig, claims: Claims, *, actor: str, now: float
) -> User:
    """A new user for a person's first sign-in: linked to the identity, and (where configured)
    with a project of their own in their home organisation to try the facility in."""
    home = identity.home_organisation(claims, config.organisation_kinds)
    entitled = identity.grants(claims.entitlements, config.rules())
    if home is None and not entitled:
        where = claims.home_organisation or "no institution named"
        raise Unauthenticated(
            f"this facility does not serve your institution ({where}) yet; "
            "ask the facility's helpdesk for access"
        )
    user = User(
        name=identity.user_name(claims, lambda name: _taken(session, User, name)),
        email=claims.email if claims.email_verified else None,  # only an address they own
        facility_role=FacilityRole.USER.value,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # another first sign-in took that name this very moment
        raise Conflict("someone signed in with the same name just now: sign in again") from exc
    _add_identity(session, config, user, claims, now=now)
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object=f"user:{user.name}",
        at=now,
        detail={"provider": config.name, "issuer": claims.issuer, "subject": claims.subject},
    )
    if home is not None and config.personal_project:
        organisation = _organisation(session, *home, actor=actor, now=now)
        _personal_project(session, user, organisation, actor=actor, now=now)
    return user


def _add_identity(
    session: Session, config: ProviderConfig, user: User, claims: Claims, *, now: float
) -> None:
    try:
        with session.begin_nested():
            session.add(
                UserIdentity(
                    user_id=user.id,
                    issuer=claims.issuer,
                    subject=claims.subject,
                    provider=config.name,
                    created_at=now,
                    last_sign_in_at=now,
                )
            )
    except IntegrityError as exc:  # the same person signing in twice at once
        raise Conflict("this identity already signs in to an account", field="provider") from exc


def _organisation(
    session: Session, domain: str, kind: OrgKind, *, actor: str, now: float
) -> Organisation:
    found = session.scalars(select(Organisation).where(Organisation.name == domain)).first()
    if found is not None:
        return found
    organisation = Organisation(name=domain, kind=kind.value, created_at=now)
    session.add(organisation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="organisation.create",
        object=f"organisation:{domain}",
        at=now,
        detail={"kind": kind.value},
    )
    return organisation


def _personal_project(
    session: Session, user: User, organisation: Organisation, *, actor: str, now: float
) -> None:
    base = identity.personal_project(user.name)
    name = base
    for number in range(2, 1000):
        if not _taken(session, Project, name):
            break
        name = f"{base[:60]}-{number}"
    project = Project(name=name, organisation_id=organisation.id, created_at=now)
    session.add(project)
    session.flush()
    add_membership(session, project, user, ProjectRole.OWNER, now=now)
    audit.record(
        session,
        actor=actor,
        action="project.create",
        object=f"project:{name}",
        at=now,
        project_id=project.id,
        detail={"organisation": organisation.name, "owner": user.name, "personal": True},
    )


def _taken(session: Session, model: type[User] | type[Project], name: str) -> bool:
    count = session.scalar(select(func.count()).select_from(model).where(model.name == name))
    return bool(count)


def _owners(session: Session, project_id: int) -> int:
    owners = select(func.count()).where(
        Member.project_id == project_id, Member.role == ProjectRole.OWNER.value
    )
    return int(session.scalar(owners) or 0)


def _audit_member(
    session: Session,
    actor: str,
    user: User,
    project: Project,
    role: str | None,
    before: str | None,
    *,
    now: float,
) -> None:
    action = "member.remove" if role is None else "member.add" if before is None else "member.role"
    audit.record(
        session,
        actor=actor,
        action=action,
        object=f"user:{user.name}",
        at=now,
        project_id=project.id,
        detail={"project": project.name, "role": role, "was": before, "by": "entitlement"},
    )


def _claims_from(stored: dict[str, Any]) -> Claims:
    fields = {f.name for f in dataclasses.fields(Claims)}
    given = {k: v for k, v in stored.items() if k in fields}
    given["entitlements"] = tuple(given.get("entitlements") or ())
    return Claims(**given)


def _request_view(row: SignInRequest) -> RequestView:
    claims = _claims_from(row.claims)
    return RequestView(
        row.id,
        row.provider,
        row.subject,
        claims.name,
        claims.email,
        claims.home_organisation,
        row.requested_at,
        row.outcome,
    )
