"""Federation with an upstream allocation portal: award imports in, usage per award out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import Response as HttpResponse

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.federation_schemas import ImportBody, ImportOut, UsageExportOut
from aifactory.api.routers.money import CSV, From, To
from aifactory.api.units import unix
from aifactory.services import audit, federation, federation_usage

router = APIRouter(prefix="/federation", tags=["federation"])


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportOut,
    responses={200: {"model": ImportOut, "description": "a dry run: reported, nothing kept"}},
)
def import_awards(
    body: ImportBody, session: WriteSession, user: CurrentUser, now: Now, response: HttpResponse
) -> ImportOut:
    """Import a file of award records: all checked first, then each created, updated, left
    unchanged or refused (with why), keyed on the upstream award id. Recorded and audited."""
    report = federation.import_awards(
        session,
        user,
        content=body.content,
        fmt=body.format,
        source=body.source,
        dry_run=body.dry_run,
        now=now,
    )
    if body.dry_run:
        response.status_code = 200
    return ImportOut.of(report)


@router.get("/imports", response_model=list[ImportOut])
def list_imports(
    session: ReadSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ImportOut]:
    """The latest imports, newest first, with what each record did."""
    return [ImportOut.of(r) for r in federation.list_imports(session, user, limit=limit)]


@router.get(
    "/usage",
    response_class=HttpResponse,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def export_usage(
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    now: Now,
    start: From,
    end: To,
    project: str | None = None,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> HttpResponse:
    """Usage of each imported award booked in [from, to), per month: what an upstream portal
    is sent. Totals equal the ledger's settlements. Audited."""
    found = federation_usage.export_usage(
        session, user, start=unix(start), end=unix(end), project=project
    )
    audit.record_read(
        state.db,
        user,
        action="federation.export",
        object="federation:usage",
        now=now,
        detail={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "project": project,
            "format": output,
        },
    )
    if output == "csv":
        return HttpResponse(federation_usage.usage_csv(found), media_type=CSV)
    body = UsageExportOut.of(found).model_dump_json()
    return HttpResponse(body, media_type="application/json")
