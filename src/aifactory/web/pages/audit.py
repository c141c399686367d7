"""The audit log: who did what, newest first, a page at a time; and whether the chain holds.

services.audit decides whose events a user reads: admins and auditors every event, a project's
owners and members their projects' (AUDIT_READ); anyone else is refused (403). The page asks it
for one page of them with the same filters as the API, newest first (`before`/`after` a cursor:
services.audit.events_page).

Verifying the chain (AUDIT_VERIFY: admins and auditors) walks the whole log, so it runs when
asked (a button; htmx puts the notice in place), never on every page view.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aifactory.domain.permissions import Action
from aifactory.errors import InvalidInput
from aifactory.faces.state import StateDep
from aifactory.services import audit
from aifactory.services.audit import Filters
from aifactory.web.review_forms import moment, see_other
from aifactory.web.session import Signed
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = 50
MAX_PAGE = 500
MAX_SEQ = 2**62
FILTER_FIELDS = ("actor", "action", "object", "since", "until")
Seq = Annotated[int | None, Query(ge=0, le=MAX_SEQ)]


@router.get("/audit")
def audit_page(
    request: Request,
    signed: Signed,
    state: StateDep,
    actor: str = "",
    action: str = "",
    object: str = "",
    since: str = "",
    until: str = "",
    before: Seq = None,
    after: Seq = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
    verify: str = "",
) -> Response:
    me = signed.principal
    typed = {"actor": actor, "action": action, "object": object, "since": since, "until": until}
    errors: dict[str, str] = {}
    try:
        filters = _filters(typed)
    except InvalidInput as exc:
        errors[exc.field or "since"] = exc.message
        filters = Filters()
    with state.db.read() as session:
        found = audit.events_page(session, me, filters, before=before, after=after, limit=limit)
        check = audit.verify(session, me) if verify and me.may(Action.AUDIT_VERIFY) else None
    return render(
        request,
        "audit/index.html",
        signed,
        status_code=422 if errors else 200,
        title="Audit log",
        page=found,
        form=typed,
        errors=errors,
        query={
            k: v for k, v in {**typed, "limit": str(limit) if limit != PAGE else ""}.items() if v
        },
        scoped=me.projects_for(Action.AUDIT_READ) is not None,
        may_verify=me.may(Action.AUDIT_VERIFY),
        check=check,
    )


@router.get("/audit/verify")
def verify_chain(request: Request, signed: Signed, state: StateDep) -> Response:
    """The chain check as a notice: the fragment for htmx, else the log page showing it."""
    if not request.headers.get("HX-Request"):
        return see_other("/audit?verify=yes")
    with state.db.read() as session:
        check = audit.verify(session, signed.principal)  # AUDIT_VERIFY, or 403
    return render(request, "audit/_chain.html", signed, check=check)


def _filters(typed: dict[str, str]) -> Filters:
    """The form's filters as the API reads them (exact actor, action and object; a time range,
    `since` included and `until` not)."""

    def text(name: str, limit: int) -> str | None:
        value = typed[name].strip()
        if len(value) > limit:
            raise InvalidInput(f"at most {limit} characters", field=name)
        return value or None

    since, until = typed["since"].strip(), typed["until"].strip()
    return Filters(
        actor=text("actor", 64),
        object=text("object", 200),
        action=text("action", 64),
        since=moment(since, "since") if since else None,
        until=moment(until, "until") if until else None,
    )
