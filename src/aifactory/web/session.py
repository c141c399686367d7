"""The portal's session cookie and CSRF check, as FastAPI dependencies.

`Signed` (any page): the signed-in user, or a redirect to the sign-in page. `SignedPost` (every
form post): the same, and the form's `csrf_token` (or htmx's `X-CSRF-Token` header) must be the
session's own. The cookie is HttpOnly, SameSite=Lax, Secure when served over HTTPS.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from aifactory.errors import InvalidInput, PermissionDenied, Unauthenticated
from aifactory.faces.state import AppState, StateDep
from aifactory.services.login import SESSION_TTL_S, SignedIn, signed_in

COOKIE = "aifactory_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInRequired(Unauthenticated):
    """Answered with a redirect to the sign-in page (htmx: an HX-Redirect)."""

    code = "sign_in_required"

    def __init__(self, message: str, *, next_url: str) -> None:
        super().__init__(message)
        self.next_url = next_url


def sign_in_url(next_url: str) -> str:
    return "/login" if next_url in ("", "/") else f"/login?next={quote(next_url, safe='/')}"


async def current_session(request: Request, state: StateDep) -> SignedIn:
    cookie = request.cookies.get(COOKIE)
    try:
        found = await run_in_threadpool(_signed_in, state, cookie)
    except Unauthenticated as exc:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("HX-Request") or request.method != "GET":
            target = _page_shown(request)  # not the fragment or the form's action
        raise SignInRequired(exc.message, next_url=target) from None
    source = request.client.host if request.client else None  # for the audit log
    found = replace(found, principal=replace(found.principal, source=source))
    request.state.signed = found  # for an error page's menu
    return found


def _page_shown(request: Request) -> str:
    """The page the browser shows (htmx says which, as a full URL), as a path on this site."""
    shown = urlsplit(request.headers.get("HX-Current-URL", "/"))
    return shown.path + (f"?{shown.query}" if shown.query else "") or "/"


def _signed_in(state: AppState, cookie: str | None) -> SignedIn:
    with state.db.read() as session:
        return signed_in(session, cookie, state.clock())


Signed = Annotated[SignedIn, Depends(current_session)]


async def checked_post(request: Request, signed: Signed) -> SignedIn:
    form = await request.form()
    value = form.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or (value if isinstance(value, str) else None)
    if not sent or not secrets.compare_digest(sent, signed.csrf_token):
        raise PermissionDenied(
            "the form's security token is missing or stale: reload the page and try again",
            field=CSRF_FIELD,
        )
    for field, given in form.items():  # no database takes NUL in text; the API refuses it too
        if isinstance(given, str) and "\x00" in given:
            raise InvalidInput("must not contain NUL characters", field=field)
    return signed


SignedPost = Annotated[SignedIn, Depends(checked_post)]


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
