"""GDPR workflows: erasures (Art. 17) with reports and certificates, records of processing
(Art. 30), project data export and closure (governance.erasure, governance.records)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi import Response as HttpResponse
from fastapi.responses import StreamingResponse

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.gdpr_schemas import ClosureOut, ClosureRequest, ErasureOut, ErasureRequest
from aifactory.api.schemas import MAX_ID
from aifactory.domain.erasure import ErasureState
from aifactory.services import closure, erasure, export, records
from aifactory.services.datasets import SHORT

router = APIRouter(tags=["gdpr"])
ErasureId = Annotated[int, Path(ge=1, le=MAX_ID)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_ID)]
PDF = "application/pdf"
ZIP = "application/zip"
CHUNK = 1 << 20


def _file(content: bytes | str, media_type: str, filename: str) -> HttpResponse:
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return HttpResponse(content, media_type=media_type, headers=disposition)


# ---- erasures ---------------------------------------------------------------------------------


@router.post(
    "/datasets/{name}/versions/{version}/erasure", status_code=201, response_model=ErasureOut
)
def request_erasure(
    name: str,
    version: VersionNumber,
    body: ErasureRequest,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> ErasureOut:
    """Record an erasure of a dataset version (GDPR Art. 17); the control loop carries it out.
    Refused (409, naming them) while active jobs use the version, unless `stop_running_jobs`:
    then they are cancelled and the erasure runs once they have stopped."""
    view = erasure.request_erasure(
        session,
        user,
        dataset=name,
        version=version,
        reason=body.reason,
        stop_running_jobs=body.stop_running_jobs,
        now=now,
    )
    session.info["after_commit"] = state.on_submit  # wakes the control loop
    return ErasureOut.of(view)


@router.get("/erasures", response_model=list[ErasureOut])
def list_erasures(
    session: ReadSession,
    user: CurrentUser,
    state: Annotated[ErasureState | None, Query(description="recorded, erasing or done")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[ErasureOut]:
    """Erasures you may see, newest first: all for admins and auditors, else those of datasets
    owned by projects you own."""
    found = erasure.list_erasures(session, user, state=state, limit=limit, before_id=before_id)
    return [ErasureOut.of(v) for v in found]


@router.get("/erasures/{erasure_id}", response_model=ErasureOut)
def show_erasure(erasure_id: ErasureId, session: ReadSession, user: CurrentUser) -> ErasureOut:
    """One erasure, with its report once done."""
    return ErasureOut.of(erasure.get_erasure(session, user, erasure_id), with_report=True)


@router.get(
    "/erasures/{erasure_id}/certificate.pdf",
    response_class=HttpResponse,
    responses={200: {"content": {PDF: {}}, "description": "the certificate of erasure"}},
)
def erasure_certificate(
    erasure_id: ErasureId, session: ReadSession, user: CurrentUser
) -> HttpResponse:
    pdf = erasure.erasure_certificate(session, user, erasure_id)
    return _file(pdf, PDF, f"erasure-{erasure_id}.pdf")


# ---- records of processing --------------------------------------------------------------------


@router.get(
    "/processing-records",
    response_class=HttpResponse,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def processing_records(
    session: ReadSession,
    user: CurrentUser,
    state: StateDep,
    now: Now,
    controller: Annotated[
        str | None, Query(min_length=1, max_length=SHORT, description="one controller's only")
    ] = None,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> HttpResponse:
    """Records of processing activities (GDPR Art. 30), one per dataset (admins, auditors).
    Audited."""
    found = records.export_records(session, user, controller=controller, output=output, now=now)
    records.record_export(
        state.db, user, controller=controller, output=output, records=found.records, now=now
    )
    if output == "csv":
        return _file(found.text, "text/csv; charset=utf-8", "processing-records.csv")
    return HttpResponse(found.text, media_type="application/json")


# ---- projects: export and closure -------------------------------------------------------------


@router.get(
    "/projects/{project}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {ZIP: {}}, "description": "every file of the project's data"}},
)
def export_project(
    project: str, session: ReadSession, user: CurrentUser, state: StateDep, now: Now
) -> StreamingResponse:
    """All of the project's data as one ZIP of JSON files and job logs (owners, admins).
    Audited."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the stream once sent
    try:
        found, names = export.export_project(
            session, user, project=project, out=spool, jobs_dir=state.jobs_dir, now=now
        )
    except BaseException:
        spool.close()
        raise
    export.record_export(state.db, user, project=found, files=len(names), now=now)
    spool.seek(0)
    disposition = {"Content-Disposition": f'attachment; filename="{found.name}-export.zip"'}
    return StreamingResponse(_chunks(spool), media_type=ZIP, headers=disposition)


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk


@router.post("/projects/{project}/close", status_code=201, response_model=ClosureOut)
def close_project(
    project: str,
    body: ClosureRequest,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> ClosureOut:
    """Close a project for good (admins): grants revoked, its datasets erased, its job
    directories removed, then a certificate. Refused (409, naming them) while its jobs (or
    jobs reading its datasets) are active, unless `stop_running_jobs`."""
    view = closure.close_project(
        session,
        user,
        project=project,
        reason=body.reason,
        stop_running_jobs=body.stop_running_jobs,
        now=now,
    )
    session.info["after_commit"] = state.on_submit  # wakes the control loop
    return ClosureOut.of(view)


@router.get("/projects/{project}/closure", response_model=ClosureOut)
def show_closure(project: str, session: ReadSession, user: CurrentUser) -> ClosureOut:
    """The project's closure: closing, or closed with its report."""
    return ClosureOut.of(closure.get_closure(session, user, project=project))


@router.get(
    "/projects/{project}/closure/certificate.pdf",
    response_class=HttpResponse,
    responses={200: {"content": {PDF: {}}, "description": "the certificate of closure"}},
)
def closure_certificate(project: str, session: ReadSession, user: CurrentUser) -> HttpResponse:
    pdf = closure.closure_certificate(session, user, project=project)
    return _file(pdf, PDF, f"closure-{project}.pdf")
