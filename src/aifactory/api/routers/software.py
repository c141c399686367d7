"""Software: Python environments built by the facility, and images imported by its admins."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.software_schemas import (
    BuildLogOut,
    EnvironmentCreate,
    EnvironmentOut,
    ImageOut,
    JobUseOut,
)
from aifactory.domain.permissions import Action
from aifactory.errors import InvalidInput
from aifactory.faces.state import AppState
from aifactory.services import environments, images
from aifactory.services.principal import Principal
from aifactory.software import layout

router = APIRouter(tags=["software"])
ProjectQuery = Annotated[
    str | None, Query(max_length=64, description="the project's (default: the facility's)")
]
IMAGE_UPLOAD_PATH = "/images"  # its body is a tar file: far above the API's usual limit


@router.post("/environments", status_code=201, response_model=EnvironmentOut)
def create_environment(
    body: EnvironmentCreate, session: WriteSession, state: StateDep, user: CurrentUser, now: Now
) -> EnvironmentOut:
    """Build a Python environment from a requirements file, in the background (`state` says
    how far; `GET …/log` shows pip's output). The same requirements and Python give the same
    build, made once and shared."""
    view = environments.create_environment(
        session,
        user,
        name=body.name,
        project=body.project,
        requirements=body.requirements,
        python=body.python,
        target=state.build_target,
        now=now,
    )
    session.info["after_commit"] = state.wake_builder
    return EnvironmentOut.of(view)


@router.get("/environments", response_model=list[EnvironmentOut])
def list_environments(
    session: ReadSession, user: CurrentUser, project: ProjectQuery = None
) -> list[EnvironmentOut]:
    """The facility's environments and those of the projects you see (or of `project`)."""
    found = environments.list_environments(session, user, project=project)
    return [EnvironmentOut.of(v) for v in found]


@router.get("/environments/{name}", response_model=EnvironmentOut)
def get_environment(
    name: str, session: ReadSession, user: CurrentUser, project: ProjectQuery = None
) -> EnvironmentOut:
    return EnvironmentOut.of(environments.show_environment(session, user, name, project=project))


@router.get("/environments/{name}/log", response_model=BuildLogOut)
def environment_log(
    name: str,
    session: ReadSession,
    state: StateDep,
    user: CurrentUser,
    project: ProjectQuery = None,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 40,
) -> BuildLogOut:
    """The last lines of the build's output (pip's progress, or its error)."""
    view = environments.show_environment(session, user, name, project=project)
    found = environments.build_log(state.software_dir, view.key, lines=lines)
    return BuildLogOut(state=view.state, lines=found)


@router.get("/environments/{name}/jobs", response_model=list[JobUseOut])
def environment_jobs(
    name: str, session: ReadSession, user: CurrentUser, project: ProjectQuery = None
) -> list[JobUseOut]:
    """The newest jobs that ran (or wait to run) in this environment's build."""
    found = environments.environment_jobs(session, user, name, project=project)
    return [JobUseOut.of(u) for u in found]


@router.delete("/environments/{name}", status_code=204)
def delete_environment(
    name: str, session: WriteSession, user: CurrentUser, now: Now, project: ProjectQuery = None
) -> Response:
    """The name goes; the build stays for the jobs that ran in it."""
    environments.delete_environment(session, user, name, project=project, now=now)
    return Response(status_code=204)


@router.post(
    IMAGE_UPLOAD_PATH,
    status_code=201,
    response_model=list[ImageOut],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def import_image(
    request: Request,
    state: StateDep,
    user: CurrentUser,
    now: Now,
    name: Annotated[str | None, Query(max_length=128, description="e.g. pytorch:2.3")] = None,
    project: ProjectQuery = None,
) -> list[ImageOut]:
    """Import an image from its file (`docker save`, `podman save --format oci-archive`, or an
    OCI image layout as a tar), admins only: the facility never pulls one from a registry."""
    user.refuse_early(Action.IMAGE_IMPORT)
    if state.software_dir is None:
        raise InvalidInput("this facility keeps no images", field="file")
    incoming = layout.images_dir(state.software_dir) / f".incoming-{uuid.uuid4().hex}.tar"
    try:
        await _receive(request, incoming)
        found = await run_in_threadpool(_import, state, user, incoming, name, project, now)
    finally:
        with contextlib.suppress(FileNotFoundError):
            incoming.unlink()
    return [ImageOut.of(v) for v in found]


async def _receive(request: Request, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            out.write(chunk)
    if size == 0:
        raise InvalidInput("the request carries no image file", field="file")


def _import(
    state: AppState,
    user: Principal,
    path: Path,
    name: str | None,
    project: str | None,
    now: float,
) -> list[images.ImageView]:
    assert state.software_dir is not None
    with state.db.session() as session:
        return images.import_file(
            session,
            user,
            tar_path=path,
            images_dir=layout.images_dir(state.software_dir),
            name=name,
            project=project,
            now=now,
        )


@router.get("/images", response_model=list[ImageOut])
def list_images(
    session: ReadSession, user: CurrentUser, project: ProjectQuery = None
) -> list[ImageOut]:
    return [ImageOut.of(v) for v in images.list_images(session, user, project=project)]


@router.get("/images/{ref:path}", response_model=ImageOut)
def get_image(
    ref: str, session: ReadSession, user: CurrentUser, project: ProjectQuery = None
) -> ImageOut:
    return ImageOut.of(images.show_image(session, user, ref, project=project))


@router.delete("/images/{ref:path}", status_code=204)
def remove_image(
    ref: str, session: WriteSession, user: CurrentUser, now: Now, project: ProjectQuery = None
) -> Response:
    images.remove_image(session, user, ref, project=project, now=now)
    return Response(status_code=204)
