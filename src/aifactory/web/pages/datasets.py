"""Datasets and their grants: what data the facility holds, under which terms, and who may use it.

services.datasets decides what each user sees (a dataset they may not see does not exist for
them: 404) and services.dataset_grants who may grant and revoke (the owner project's owners;
admins for facility datasets). Registering data stays in the CLI and the API (the data must be
put in the data root first); the page shows the command.

Vocabulary (domain.datasets): each version carries its own terms — classification, legal basis
(GDPR Art. 6(1)) and for special categories an Art. 9(2) condition, purposes, residency (NL, EU,
ANY), retention and licence; the list shows the newest version's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from aifactory.domain.datasets import LegalBasis, SpecialCondition, VersionState
from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError
from aifactory.faces.inputs import GrantId
from aifactory.faces.state import StateDep
from aifactory.services import dataset_grants, datasets
from aifactory.services.dataset_views import DatasetView, VersionView
from aifactory.services.login import SignedIn
from aifactory.web.nav import may_somewhere
from aifactory.web.review_forms import day_text, form_problem, moment, see_other
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
GRANT_FIELDS = ("project", "purpose", "until")
# The GDPR's own lettering: Art. 6(1)(a)–(f) and Art. 9(2)(a)–(j), in the enums' order.
ARTICLE_6 = {b.value: f"Art. 6(1)({chr(97 + i)})" for i, b in enumerate(LegalBasis)}
ARTICLE_9 = {c.value: f"Art. 9(2)({chr(97 + i)})" for i, c in enumerate(SpecialCondition)}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(size_bytes: int) -> str:
    size, unit = float(size_bytes), 0
    while size >= 1024 and unit < len(UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{size:.0f} {UNITS[unit]}" if unit == 0 else f"{size:.1f} {UNITS[unit]}"


def legal_text(basis: str | None, condition: str | None) -> str:
    """ "Art. 6(1)(e) public task · Art. 9(2)(j) archiving research statistics", or "—"."""
    parts = [
        f"{articles[value]} {value.replace('_', ' ')}"
        for articles, value in ((ARTICLE_6, basis), (ARTICLE_9, condition))
        if value is not None
    ]
    return " · ".join(parts) or "—"


HELPERS: dict[str, Any] = {"size_text": size_text, "legal_text": legal_text}  # for templates


@router.get("/datasets")
def datasets_page(request: Request, signed: Signed, state: StateDep) -> Response:
    me = signed.principal
    me.refuse_early(Action.DATASET_READ)
    with state.db.read() as session:
        found = datasets.list_datasets(session, me, now=state.clock())
    return render(
        request,
        "datasets/index.html",
        signed,
        title="Datasets",
        datasets=found,
        may_register=may_somewhere(signed.principal, Action.DATASET_REGISTER),
        **HELPERS,
    )


@router.get("/datasets/{name}")
def dataset_page(request: Request, name: str, signed: Signed, state: StateDep) -> Response:
    return _detail(request, signed, state, name)


def _detail(
    request: Request,
    signed: SignedIn,
    state: StateDep,
    name: str,
    *,
    status_code: int = 200,
    failed: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    me, now = signed.principal, state.clock()
    with state.db.read() as session:
        view = datasets.get_dataset(session, me, name=name, now=now)
    newest = _newest_present(view)
    until = datetime.fromtimestamp(now, UTC) + timedelta(days=90)
    if newest is not None:
        until = min(until, datetime.fromtimestamp(newest.retention_until, UTC))
    return render(
        request,
        "datasets/detail.html",
        signed,
        status_code=status_code,
        title=f"Dataset {view.dataset.name}",
        view=view,
        newest=newest,
        may_grant=me.may(Action.DATASET_GRANT, view.dataset.owner_project_id),
        failed=failed,
        errors=errors or {},
        form={"until": day_text(until), **(form or {})},
        **HELPERS,
    )


def _newest_present(view: DatasetView) -> VersionView | None:
    present = [v for v in view.versions if v.state == VersionState.PRESENT.value]
    return present[-1] if present else None


@router.post("/datasets/{name}/grants")
def grant(
    request: Request,
    name: str,
    signed: SignedPost,
    state: StateDep,
    project: Text = "",
    purpose: Text = "",
    until: Text = "",
) -> Response:
    typed = {"project": project, "purpose": purpose, "until": until}
    try:
        with state.db.session() as session:
            dataset_grants.grant_dataset(
                session,
                signed.principal,
                dataset=name,
                project=project.strip(),
                purpose=purpose,
                until=moment(until, "until"),
                now=state.clock(),
            )
    except AifactoryError as exc:
        errors, status = form_problem(exc, GRANT_FIELDS)
        return _detail(
            request,
            signed,
            state,
            name,
            status_code=status,
            failed="grant",
            errors=errors,
            form=typed,
        )
    return see_other(f"/datasets/{quote(name, safe='')}")


@router.post("/datasets/{name}/grants/{grant_id}/revoke")
def revoke(
    request: Request,
    name: str,
    grant_id: GrantId,
    signed: SignedPost,
    state: StateDep,
    reason: Text = "",
) -> Response:
    try:
        with state.db.session() as session:
            dataset_grants.revoke_grant(
                session,
                signed.principal,
                dataset=name,
                grant_id=grant_id,
                reason=reason,
                now=state.clock(),
            )
    except AifactoryError as exc:
        errors, status = form_problem(exc, ("reason", "grant_id"))
        return _detail(
            request,
            signed,
            state,
            name,
            status_code=status,
            failed=f"revoke-{grant_id}",
            errors=errors,
            form={"reason": reason},
        )
    return see_other(f"/datasets/{quote(name, safe='')}")
