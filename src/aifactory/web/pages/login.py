"""Sign in (with any provider), sign out, and change one's own password."""

from __future__ import annotations

import secrets
import threading
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from aifactory.errors import AifactoryError, InvalidInput, NotFound, Unauthenticated
from aifactory.faces.state import AppState, StateDep
from aifactory.services import passwords
from aifactory.services.login import (
    BUILT_IN,
    FormProvider,
    RedirectProvider,
    close_session,
    open_session,
)
from aifactory.web.session import COOKIE, Signed, SignedPost, clear_session_cookie, safe_next
from aifactory.web.session import set_session_cookie as _set_cookie
from aifactory.web.templating import render
from aifactory.web.throttle import Throttle

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "aifactory_login"  # the sign-in form's own CSRF token (no session yet)
STATE_COOKIE = "aifactory_login_state"  # a redirect sign-in's state, checked on the way back
PROVIDERS: dict[str, FormProvider] = {p.name: p for p in BUILT_IN}
# Argon2 takes ~64 MiB and a good part of a second a check: a few at a time, whoever posts.
SLOW_CHECKS = threading.BoundedSemaphore(4)
GUESSES = Throttle(limit=10, window_s=900.0)  # failed sign-ins per address
# Federated sign-in (OIDC): none built in; `REDIRECT_PROVIDERS[p.name] = p` adds one, and the
# sign-in page offers it as a button (see docs/portal.md).
REDIRECT_PROVIDERS: dict[str, RedirectProvider] = {}


def _login_page(
    request: Request,
    *,
    next_url: str,
    error: str | None = None,
    chosen: str = "",
    username: str = "",
    status: int | None = None,
) -> Response:
    token = secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        None,
        status_code=status or (401 if error else 200),
        title="Sign in",
        providers=list(PROVIDERS.values()),
        redirect_providers=list(REDIRECT_PROVIDERS.values()),
        login_csrf=token,
        next_url=safe_next(next_url),
        error=error,
        chosen=chosen,
        username=username,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_url=next)


@router.get("/login/{provider}/start")
def start_redirect_login(request: Request, provider: str, next: str = "/") -> Response:
    """Off to the identity provider, with a state that must come back (and our next page)."""
    chosen = REDIRECT_PROVIDERS.get(provider)
    if chosen is None:
        raise NotFound(f"no sign-in provider named {provider!r}", field="provider")
    state = secrets.token_urlsafe(24)
    back = str(request.url_for("finish_redirect_login", provider=provider))
    response = RedirectResponse(chosen.start(state=state, return_url=back), status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        f"{state} {safe_next(next)}",
        max_age=600,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login/{provider}/callback", name="finish_redirect_login")
async def finish_redirect_login(request: Request, provider: str, state: StateDep) -> Response:
    chosen = REDIRECT_PROVIDERS.get(provider)
    if chosen is None:
        raise NotFound(f"no sign-in provider named {provider!r}", field="provider")
    expected, _, next_url = request.cookies.get(STATE_COOKIE, "").partition(" ")
    sent = request.query_params.get("state", "")
    if not expected or not secrets.compare_digest(sent, expected):
        return _login_page(request, next_url="/", error="The sign-in expired: please try again.")
    query = dict(request.query_params)
    source = request.client.host if request.client else None
    try:
        token = await run_in_threadpool(_finish, state, chosen, query, source)
    except Unauthenticated as exc:
        return _login_page(request, next_url=next_url, error=exc.message)
    response = RedirectResponse(safe_next(next_url), status_code=303)
    _set_cookie(response, request, token)
    response.delete_cookie(STATE_COOKIE, path="/login")
    return response


def _finish(
    state: AppState, provider: RedirectProvider, query: dict[str, str], source: str | None
) -> str:
    now = state.clock()
    with state.db.session() as session:
        user = provider.finish(session, query, now)
        return open_session(session, user, provider=provider.name, source=source, now=now)


@router.post("/login/{provider}")
async def login(request: Request, provider: str, state: StateDep) -> Response:
    chosen = PROVIDERS.get(provider)
    if chosen is None:
        raise NotFound(f"no sign-in provider named {provider!r}", field="provider")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    next_url = safe_next(form.get("next"))
    sent, expected = form.get("login_csrf", ""), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(sent, expected):
        return _login_page(request, next_url=next_url, error="The form expired: please try again.")
    source = request.client.host if request.client else None
    name = form.get("username", "")
    wait_s = GUESSES.wait_s(source or "", state.clock())
    if wait_s > 0:
        minutes = max(1, round(wait_s / 60))
        error = f"Too many failed sign-ins from your address: try again in {minutes} min."
        return _login_page(
            request, next_url=next_url, error=error, chosen=provider, username=name, status=429
        )
    try:
        token = await run_in_threadpool(_sign_in, state, chosen, form, source)
    except Unauthenticated as exc:
        GUESSES.failed(source or "", state.clock())
        return _login_page(
            request, next_url=next_url, error=exc.message, chosen=provider, username=name
        )
    response = RedirectResponse(next_url, status_code=303)
    _set_cookie(response, request, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _sign_in(
    state: AppState, provider: FormProvider, form: dict[str, str], source: str | None
) -> str:
    now = state.clock()
    try:
        with SLOW_CHECKS, state.db.read() as session:  # the hash is slow: no write lock held
            found = provider.verify(session, form, now)
        with state.db.session() as session:
            return open_session(session, found, provider=provider.name, source=source, now=now)
    except Unauthenticated:
        with state.db.session() as session:
            name = form.get("username") or "unknown"
            passwords.record_failed_sign_in(
                session, name, provider=provider.name, source=source, now=now
            )
        raise


@router.post("/logout")
async def logout(request: Request, signed: SignedPost, state: StateDep) -> Response:  # noqa: ARG001
    cookie = request.cookies.get(COOKIE, "")
    await run_in_threadpool(_close, state, cookie)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


def _close(state: AppState, cookie: str) -> None:
    with state.db.session() as session:
        close_session(session, cookie, now=state.clock())


@router.get("/account")
def account(request: Request, signed: Signed) -> Response:
    return render(request, "account.html", signed, title="Your account")


@router.post("/account/password")
def change_password(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    new_password: Annotated[str, Form()],
    repeat_password: Annotated[str, Form()],
    current_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        if new_password != repeat_password:
            raise InvalidInput("does not match the new password", field="repeat_password")
        with state.db.session() as session:
            now = state.clock()
            passwords.change_own_password(
                session,
                signed.principal,
                current=current_password,
                new=new_password,
                now=now,
                keep_session=signed.session_id,
            )
    except AifactoryError as exc:
        errors = {exc.field or "new_password": exc.message}
        return render(
            request, "account.html", signed, status_code=422, title="Your account", errors=errors
        )
    return render(request, "account.html", signed, title="Your account", changed=True)
