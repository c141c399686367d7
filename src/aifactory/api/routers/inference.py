"""Inference endpoints (a project's models, served) and the keys its applications call them
with at the gateway (`/v1`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.inference_schemas import EndpointCreate, EndpointOut, KeyCreate, KeyMade, KeyOut
from aifactory.api.schemas import MAX_ID
from aifactory.errors import Conflict, InvalidInput
from aifactory.services import endpoints, inference_keys

router = APIRouter(tags=["inference"])
ProjectQuery = Annotated[str, Query(min_length=1, max_length=64)]


@router.post("/endpoints", status_code=201, response_model=EndpointOut)
def create_endpoint(
    body: EndpointCreate, session: WriteSession, state: StateDep, user: CurrentUser, now: Now
) -> EndpointOut:
    """Serve a succeeded job's checkpoints under `name`: its replicas are jobs of the project
    (the recipe's engine), and the gateway routes to those running."""
    if state.jobs_dir is None:
        raise InvalidInput("this facility runs no jobs", field="source_job")
    if state.endpoints_refused is not None:
        raise Conflict(state.endpoints_refused, field="engine")
    view = endpoints.create_endpoint(
        session, user, body.spec(), project=body.project, jobs_dir=state.jobs_dir, now=now
    )
    session.info["after_commit"] = state.on_submit
    return EndpointOut.of(view)


@router.get("/endpoints", response_model=list[EndpointOut])
def list_endpoints(
    session: ReadSession, user: CurrentUser, project: ProjectQuery
) -> list[EndpointOut]:
    return [EndpointOut.of(v) for v in endpoints.list_endpoints(session, user, project=project)]


@router.get("/endpoints/{name}", response_model=EndpointOut)
def get_endpoint(
    name: str, session: ReadSession, user: CurrentUser, project: ProjectQuery
) -> EndpointOut:
    return EndpointOut.of(endpoints.show_endpoint(session, user, name, project=project))


@router.delete("/endpoints/{name}", status_code=204)
def delete_endpoint(
    name: str, session: WriteSession, user: CurrentUser, now: Now, project: ProjectQuery
) -> Response:
    endpoints.delete_endpoint(session, user, name, project=project, now=now)
    return Response(status_code=204)


@router.post("/inference-keys", status_code=201, response_model=KeyMade)
def create_key(body: KeyCreate, session: WriteSession, user: CurrentUser, now: Now) -> KeyMade:
    """A key for the gateway: `key` is shown in this answer only."""
    view, plain = inference_keys.create_key(
        session,
        user,
        name=body.name,
        project=body.project,
        models=body.models,
        ttl_days=body.ttl_days,
        now=now,
        limits=body.limits(),
    )
    return KeyMade(**KeyOut.of(view).model_dump(), key=plain)


@router.get("/inference-keys", response_model=list[KeyOut])
def list_keys(session: ReadSession, user: CurrentUser, project: ProjectQuery) -> list[KeyOut]:
    return [KeyOut.of(v) for v in inference_keys.list_keys(session, user, project=project)]


@router.delete("/inference-keys/{key_id}", response_model=KeyOut)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: WriteSession,
    user: CurrentUser,
    now: Now,
) -> KeyOut:
    return KeyOut.of(inference_keys.revoke_key(session, user, key_id, now=now))
