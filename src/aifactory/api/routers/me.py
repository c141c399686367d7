"""The caller: who they are, their projects and their API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.api.routers.tenancy import project_out
from aifactory.api.schemas import (
    MAX_ID,
    MeOut,
    PasswordChange,
    PasswordIssued,
    TokenCreate,
    TokenIssued,
    TokenOut,
)
from aifactory.services import auth, passwords, tenancy
from aifactory.services.tenancy import MeView

router = APIRouter(tags=["me"])


@router.get("/me", response_model=MeOut)
def whoami(session: ReadSession, user: CurrentUser) -> MeOut:
    return me_out(tenancy.me(session, user))


@router.put("/me/default-project/{project}", response_model=MeOut)
def use_project(project: str, session: WriteSession, user: CurrentUser) -> MeOut:
    return me_out(tenancy.set_default_project(session, user, project=project))


def me_out(me: MeView) -> MeOut:
    return MeOut(
        name=me.name,
        facility_role=me.facility_role,
        default_project=me.default_project,
        projects=[project_out(p) for p in me.projects],
    )


@router.put("/me/password", status_code=204)
def change_password(
    body: PasswordChange, session: WriteSession, user: CurrentUser, now: Now
) -> None:
    """Your portal password: the current one is needed if you have one."""
    passwords.change_own_password(
        session, user, current=body.current_password, new=body.new_password, now=now
    )


@router.post("/users/{name}/password", status_code=201, response_model=PasswordIssued)
def reset_password(name: str, session: WriteSession, user: CurrentUser, now: Now) -> PasswordIssued:
    """Admins: a new generated portal password for a user (shown once)."""
    return PasswordIssued(
        user=name, password=passwords.reset_password(session, user, name, now=now)
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(
    session: ReadSession, user: CurrentUser, owner: str | None = None
) -> list[TokenOut]:
    return [TokenOut.of(t) for t in auth.list_tokens(session, user, user_name=owner)]


@router.post("/tokens", status_code=201, response_model=TokenIssued)
def create_token(
    body: TokenCreate, session: WriteSession, user: CurrentUser, now: Now
) -> TokenIssued:
    row, plain = auth.create_token(
        session, user, name=body.name, now=now, ttl_days=body.ttl_days, user_name=body.user
    )
    return TokenIssued(**TokenOut.of(row).model_dump(), token=plain)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: WriteSession,
    user: CurrentUser,
    now: Now,
) -> TokenOut:
    return TokenOut.of(auth.revoke_token(session, user, token_id, now=now))
