"""Maintenance windows (services.maintenance): everyone reads them, operators make them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from aifactory.api.deps import CurrentUser, Now, ReadSession, WriteSession
from aifactory.api.maintenance_schemas import MaintenanceCreate, MaintenanceOut
from aifactory.api.schemas import MAX_ID
from aifactory.api.units import unix
from aifactory.services import maintenance

router = APIRouter(prefix="/maintenance", tags=["facility"])
WindowId = Annotated[int, Path(ge=1, le=MAX_ID, description="the window's id")]


@router.get("", response_model=list[MaintenanceOut])
def list_windows(
    session: ReadSession,
    user: CurrentUser,
    now: Now,
    everything: Annotated[
        bool, Query(alias="all", description="also windows over or called off")
    ] = False,
) -> list[MaintenanceOut]:
    """Windows not over, soonest first: which nodes, when, and why."""
    found = maintenance.listed(session, user, now=now, everything=everything)
    return [MaintenanceOut.of(w) for w in found]


@router.post("", response_model=MaintenanceOut, status_code=status.HTTP_201_CREATED)
def create_window(
    body: MaintenanceCreate, session: WriteSession, user: CurrentUser, now: Now
) -> MaintenanceOut:
    """Announce a window (admins and operators): no job starts on its nodes that would run
    into it by its time limit; everyone with work on the facility is notified."""
    found = maintenance.create(
        session,
        user,
        nodes=body.nodes,
        begins_at=unix(body.begins_at),
        ends_at=unix(body.ends_at),
        reason=body.reason,
        now=now,
    )
    return MaintenanceOut.of(found)


@router.post("/{window_id}/cancel", response_model=MaintenanceOut)
def cancel_window(
    window_id: WindowId, session: WriteSession, user: CurrentUser, now: Now
) -> MaintenanceOut:
    """Call a window off (admins and operators); those notified of it are told."""
    return MaintenanceOut.of(maintenance.cancel(session, user, window_id, now=now))
