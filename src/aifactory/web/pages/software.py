"""Software: the Python environments and container images of your projects and the facility,
what each holds (every package, resolved) and which jobs ran in it. Building and importing stay
in the CLI and the API (a requirements file, an image's tar); the page shows the commands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from aifactory.domain.permissions import Action
from aifactory.faces.state import StateDep
from aifactory.services import environments, images
from aifactory.web.nav import may_somewhere
from aifactory.web.pages.datasets import size_text
from aifactory.web.session import Signed
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/software")
def software_page(
    request: Request, signed: Signed, state: StateDep, project: str | None = None
) -> Response:
    me = signed.principal
    with state.db.read() as session:
        envs = environments.list_environments(session, me, project=project)
        found = images.list_images(session, me, project=project)
    return render(
        request,
        "software/index.html",
        signed,
        title="Software",
        project=project,
        environments=envs,
        images=found,
        may_build=may_somewhere(me, Action.ENVIRONMENT_CREATE),
        may_import=me.may(Action.IMAGE_IMPORT),
        size_text=size_text,
    )


@router.get("/software/environments/{name}")
def environment_page(
    request: Request, name: str, signed: Signed, state: StateDep, project: str | None = None
) -> Response:
    me = signed.principal
    with state.db.read() as session:
        view = environments.show_environment(session, me, name, project=project)
        used = environments.environment_jobs(session, me, name, project=project)
    log = environments.build_log(state.software_dir, view.key, lines=30)
    return render(
        request,
        "software/environment.html",
        signed,
        title=f"Environment {name}",
        env=view,
        jobs=used,
        log=log if view.state != "ready" else [],
        size_text=size_text,
    )


@router.get("/software/images/{ref:path}")
def image_page(
    request: Request, ref: str, signed: Signed, state: StateDep, project: str | None = None
) -> Response:
    me = signed.principal
    with state.db.read() as session:
        view = images.show_image(session, me, ref, project=project)
        used = images.image_jobs(session, me, ref, project=project)
    return render(
        request,
        "software/image.html",
        signed,
        title=f"Image {view.name}",
        image=view,
        jobs=used,
        size_text=size_text,
    )
