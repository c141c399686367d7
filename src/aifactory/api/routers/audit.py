"""The audit log: read with filters, export as JSON Lines, verify the chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from aifactory.api.audit_schemas import AuditEventOut, AuditVerifyOut
from aifactory.api.deps import CurrentUser, ReadSession, StateDep
from aifactory.api.units import MOMENT_FORMAT, Moment, unix
from aifactory.domain.audit import AuditRecord
from aifactory.services import audit as service
from aifactory.services.audit import Filters

router = APIRouter(prefix="/audit", tags=["audit"])
NDJSON = "application/x-ndjson"
MAX_SEQ = 2**62


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else unix(moment)


def _filters(
    actor: Annotated[str | None, Query(max_length=64, description="who did it")] = None,
    object: Annotated[str | None, Query(max_length=200, description="e.g. job:12")] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. job.submit")] = None,
    since: Annotated[Moment | None, Query(description=f"inclusive: {MOMENT_FORMAT}")] = None,
    until: Annotated[Moment | None, Query(description=f"exclusive: {MOMENT_FORMAT}")] = None,
    after_seq: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="only events after this one (paging)")
    ] = None,
) -> Filters:
    return Filters(actor, object, action, _seconds(since), _seconds(until), after_seq)


AuditFilters = Annotated[Filters, Depends(_filters)]


@router.get("", response_model=list[AuditEventOut])
def list_events(
    session: ReadSession,
    user: CurrentUser,
    chosen: AuditFilters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventOut]:
    """Events you may read, oldest first; page on with `after_seq` = the last `seq` seen.
    Admins and auditors read every event; project owners and members their projects'."""
    return [AuditEventOut.of(e) for e in service.list_events(session, user, chosen, limit=limit)]


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}, "description": "one event per line, oldest first"}},
)
def export_events(user: CurrentUser, state: StateDep, chosen: AuditFilters) -> StreamingResponse:
    """Every event you may read that matches, as JSON Lines, streamed."""
    found = service.export_events(state.db, user, chosen)
    return StreamingResponse(_lines(found), media_type=NDJSON)


def _lines(events: Iterator[AuditRecord]) -> Iterator[str]:
    for event in events:
        yield AuditEventOut.of(event).model_dump_json() + "\n"


@router.get("/verify", response_model=AuditVerifyOut)
def verify(session: ReadSession, user: CurrentUser) -> AuditVerifyOut:
    """Walk the whole chain (admins and auditors): is every event intact and in place?"""
    return AuditVerifyOut.of(service.verify(session, user))
