"""Programmes and calls: admins define them, everyone signed in reads them."""

from __future__ import annotations

from fastapi import APIRouter

from aifactory.api.accounting_schemas import (
    CallCreate,
    CallOut,
    ProgrammeBody,
    ProgrammeCreate,
    ProgrammeOut,
)
from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.services import programmes as service

router = APIRouter(tags=["programmes"])


@router.get("/programmes", response_model=list[ProgrammeOut])
def list_programmes(session: ReadSession, user: CurrentUser) -> list[ProgrammeOut]:
    return [ProgrammeOut.of(p) for p in service.list_programmes(session, user)]


@router.post("/programmes", status_code=201, response_model=ProgrammeOut)
def create_programme(
    body: ProgrammeCreate, session: WriteSession, user: CurrentUser, now: Now
) -> ProgrammeOut:
    created = service.create_programme(session, user, name=body.name, spec=body.spec(), now=now)
    return ProgrammeOut.of(created)


@router.put("/programmes/{programme}", response_model=ProgrammeOut)
def update_programme(
    programme: str, body: ProgrammeBody, session: WriteSession, user: CurrentUser, now: Now
) -> ProgrammeOut:
    """Replace everything about the programme but its name."""
    updated = service.update_programme(session, user, name=programme, spec=body.spec(), now=now)
    return ProgrammeOut.of(updated)


@router.get("/calls", response_model=list[CallOut])
def list_calls(session: ReadSession, user: CurrentUser, now: Now) -> list[CallOut]:
    return [CallOut.of(c) for c in service.list_calls(session, user, now=now)]


@router.post("/calls", status_code=201, response_model=CallOut)
def create_call(body: CallCreate, session: WriteSession, user: CurrentUser, now: Now) -> CallOut:
    created = service.create_call(
        session,
        user,
        name=body.name,
        programme=body.programme,
        title=body.title,
        opens_at=body.opens_at.timestamp(),
        closes_at=body.closes_at.timestamp(),
        budget_gpu_hours=body.budget_gpu_hours,
        terms=body.terms(),
        now=now,
    )
    return CallOut.of(created)
