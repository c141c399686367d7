"""Container images: imported by admins from a file (software.images), never pulled.

An image is kept once by its digest under the software directory and named by rows here: the
facility's (everyone may run it) or a project's (its members). A job names an image by a name
or by its digest and keeps the digest, so a name moved to another image later changes nothing
for a job already submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aifactory.domain.images import image_name, is_digest
from aifactory.domain.permissions import Action
from aifactory.errors import InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.environments import JobUse, jobs_using
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.software.images import ImageError, ImportedImage, import_image
from aifactory.store.models import Image, Job, Project


@dataclass(frozen=True, slots=True)
class ImageView:
    name: str
    project: str | None  # None: the facility's
    digest: str
    size_bytes: int
    config: dict[str, Any]
    imported_by: str
    imported_at: float
    jobs: int


def import_file(
    session: Session,
    principal: Principal,
    *,
    tar_path: Path,
    images_dir: Path,
    name: str | None,
    project: str | None,
    now: float,
) -> list[ImageView]:
    """Unpack the image in `tar_path` (kept by digest; the same image twice is kept once) and
    name it: `name`, else the names it came with. Admins only."""
    principal.authorize(Action.IMAGE_IMPORT)
    owner = project_by_name(session, principal, project) if project is not None else None
    try:
        wanted = image_name(name) if name is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc), field="name") from None
    try:
        imported = import_image(images_dir, tar_path, name=wanted)
    except ImageError as exc:
        raise InvalidInput(str(exc), field="file") from None
    names = [wanted] if wanted is not None else [image_name(n) for n in _usable(imported.names)]
    if not names:
        raise InvalidInput(
            "the image carries no name: give one (`--name pytorch:2.3`)", field="name"
        )
    owner_id = owner.id if owner is not None else None
    for each in names:
        _name(session, owner_id, each, imported, principal.name, now)
    audit.record(
        session,
        actor=principal.name,
        action="image.import",
        object=f"image:{imported.digest}",
        source=principal.source,
        project_id=owner_id,
        detail={"names": names, "size_bytes": imported.size_bytes},
        at=now,
    )
    session.flush()
    rows = [_named(session, owner_id, each) for each in names]
    return [_view(session, principal, row) for row in rows if row is not None]


def _usable(names: tuple[str, ...] | list[str]) -> list[str]:
    found = []
    for each in names:
        try:
            found.append(image_name(each))
        except ValueError:
            continue  # a name we cannot keep (upper case, say): the admin names it
    return found


def _name(
    session: Session,
    owner_id: int | None,
    name: str,
    imported: ImportedImage,
    by: str,
    now: float,
) -> None:
    """`name` now means this image in its scope (a name moved from another image moves)."""
    row = _named(session, owner_id, name)
    if row is None:
        row = Image(project_id=owner_id, name=name)
        session.add(row)
    row.digest, row.size_bytes = imported.digest, imported.size_bytes
    row.config = _config(imported)
    row.imported_by, row.imported_at = by, now


def _config(imported: ImportedImage) -> dict[str, Any]:
    return {
        "architecture": imported.architecture,
        "os": imported.os,
        "env": list(imported.env),
        "working_dir": imported.working_dir,
        "entrypoint": list(imported.entrypoint or []),
        "cmd": list(imported.cmd or []),
        "user": imported.user,
        "layers": len(imported.layers),
    }


def list_images(session: Session, principal: Principal, *, project: str | None) -> list[ImageView]:
    stmt = select(Image).order_by(Image.name)
    scopes = (
        [project_by_name(session, principal, project, action=Action.SOFTWARE_READ).id]
        if project is not None
        else principal.projects_for(Action.SOFTWARE_READ)
    )
    if scopes is not None:
        stmt = stmt.where(or_(Image.project_id.is_(None), Image.project_id.in_(scopes)))
    rows = list(session.scalars(stmt))
    jobs = _jobs_in(session, principal, [row.digest for row in rows])
    return [_view(session, principal, row, jobs) for row in rows]


def show_image(
    session: Session, principal: Principal, ref: str, *, project: str | None
) -> ImageView:
    owner_id = None
    if project is not None:
        owner_id = project_by_name(session, principal, project, action=Action.SOFTWARE_READ).id
    row = _lookup(session, owner_id, ref)
    if row is None:
        raise NotFound(f"no image {ref!r} that you can see", field="image")
    return _view(session, principal, row)


def image_jobs(
    session: Session, principal: Principal, ref: str, *, project: str | None, limit: int = 100
) -> list[JobUse]:
    """The newest jobs that ran (or wait to run) in this image, of projects the reader sees."""
    digest = show_image(session, principal, ref, project=project).digest
    return jobs_using(session, principal, Job.image_digest == digest, limit=limit)


def remove_image(
    session: Session, principal: Principal, ref: str, *, project: str | None, now: float
) -> None:
    """The name goes; the image's files stay while any job may still run in it."""
    principal.authorize(Action.IMAGE_IMPORT)
    owner_id = project_by_name(session, principal, project).id if project is not None else None
    name = _kept_name(ref)
    row = _named(session, owner_id, name) if name is not None else None
    if row is None:
        raise NotFound(f"no image named {ref!r}", field="image")
    session.delete(row)
    audit.record(
        session,
        actor=principal.name,
        action="image.remove",
        object=f"image:{row.digest}",
        source=principal.source,
        project_id=owner_id,
        detail={"name": row.name},
        at=now,
    )


def resolve_for_job(session: Session, project_id: int, ref: str) -> tuple[str, str]:
    """(name, digest) of the image a job of `project_id` runs in: by digest, or by name (the
    project's first, then the facility's)."""
    row = _lookup(session, project_id, ref)
    if row is None:
        raise InvalidInput(
            f"no image {ref!r} in the project or the facility: images are imported by the "
            "facility's admins (`aifactory images list` shows them)",
            field="image",
        )
    return (row.name, row.digest)


def _kept_name(ref: str) -> str | None:
    """The name as kept, or None for what cannot be an image's name (no such image)."""
    try:
        return image_name(ref)
    except ValueError:
        return None


def _lookup(session: Session, project_id: int | None, ref: str) -> Image | None:
    scopes = [None] if project_id is None else [project_id, None]
    if is_digest(ref):
        for scope in scopes:
            stmt = select(Image).where(_scope(scope), Image.digest == ref).limit(1)
            if (row := session.scalars(stmt).first()) is not None:
                return row
        return None
    name = _kept_name(ref)
    for scope in scopes:
        if name is not None and (row := _named(session, scope, name)) is not None:
            return row
    return None


def _scope(project_id: int | None) -> Any:
    return Image.project_id.is_(None) if project_id is None else Image.project_id == project_id


def _named(session: Session, project_id: int | None, name: str) -> Image | None:
    stmt = select(Image).where(_scope(project_id), Image.name == name)
    return session.scalars(stmt).first()


def _view(
    session: Session, principal: Principal, row: Image, jobs: dict[str, int] | None = None
) -> ImageView:
    """`jobs`: the counts by digest where the caller has them (a listing: one query)."""
    owner = session.get(Project, row.project_id) if row.project_id is not None else None
    counted = jobs if jobs is not None else _jobs_in(session, principal, [row.digest])
    return ImageView(
        name=row.name,
        project=owner.name if owner is not None else None,
        digest=row.digest,
        size_bytes=row.size_bytes,
        config=dict(row.config),
        imported_by=row.imported_by,
        imported_at=row.imported_at,
        jobs=counted.get(row.digest, 0),
    )


def _jobs_in(session: Session, principal: Principal, digests: list[str]) -> dict[str, int]:
    """How many jobs (of the projects the reader sees) ran in each image: one query."""
    stmt = (
        select(Job.image_digest, func.count())
        .where(Job.image_digest.in_(set(digests)))
        .group_by(Job.image_digest)
    )
    seen = principal.projects_for(Action.JOB_READ)
    if seen is not None:
        stmt = stmt.where(Job.project_id.in_(seen))
    return {str(digest): int(count) for digest, count in session.execute(stmt)}
