"""Sign in (with any provider), sign out, and change one's own password."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from aifactory.errors import (
    AifactoryError,
    Conflict,
    InvalidInput,
    NotFound,
    NotReady,
    Unauthenticated,
)
from aifactory.faces.state import AppState, StateDep
from aifactory.services import passwords
from aifactory.services.federated import sign_in as federated
from aifactory.services.federated.oidc import OidcClient
from aifactory.services.federated.sign_in import ATTEMPT_TTL_S
from aifactory.services.login import (
    BUILT_IN,
    FormProvider,
    SignedIn,
    close_session,
    open_session,
    signed_in,
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
# Federated sign-ins started per address: each keeps an attempt for 10 minutes, asked by anyone.
STARTS = Throttle(limit=30, window_s=600.0)


def _login_page(
    request: Request,
    *,
    next_url: str,
    error: str | None = None,
    chosen: str = "",
    username: str = "",
    status: int | None = None,
    waiting: str | None = None,
) -> Response:
    token = secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        None,
        status_code=status or (401 if error else 200),
        title="Sign in",
        providers=list(PROVIDERS.values()),
        redirect_providers=_sign_in_providers(request),
        waiting=waiting,
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


def _sign_in_providers(request: Request) -> list[OidcClient]:
    state: AppState = request.app.state.aifactory
    return list(state.sign_in.values())


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_url=next)


@router.get("/login/{provider}/start")
async def start_federated_login(
    request: Request, provider: str, state: StateDep, next: str = "/"
) -> Response:
    """Off to the identity provider; its answer must come back to this browser (the state
    cookie) and to an attempt we keep (used once, with the PKCE verifier and the nonce)."""
    client = _provider(state, provider)
    source = request.client.host if request.client else ""
    wait_s = STARTS.wait_s(source, state.clock())
    if wait_s > 0:
        error = (
            f"Too many sign-ins from your address: try again in {max(1, round(wait_s / 60))} min."
        )
        return _login_page(request, next_url=next, error=error, status=429)
    STARTS.failed(source, state.clock())  # counted: started, whether it is finished or not
    back = _callback(request, state, provider)
    try:
        url, sent = await run_in_threadpool(_begin, state, client, back, None)
    except NotReady as exc:
        return _login_page(request, next_url=next, error=exc.message, status=503)
    return _to_provider(request, url, sent, next)


@router.post("/account/identities/{provider}")
async def link_identity(
    request: Request, provider: str, signed: SignedPost, state: StateDep
) -> Response:
    """Link an identity at `provider` to the signed-in account: off to sign in there."""
    client = _provider(state, provider)
    back = _callback(request, state, provider)
    user_id = signed.principal.user_id
    try:
        url, sent = await run_in_threadpool(_begin, state, client, back, user_id)
    except NotReady as exc:
        return _account_page(request, signed, state, status=503, linked_error=exc.message)
    return _to_provider(request, url, sent, "/account")


@router.get("/login/{provider}/callback", name="finish_federated_login")
async def finish_federated_login(request: Request, provider: str, state: StateDep) -> Response:
    client = _provider(state, provider)
    expected, _, next_url = request.cookies.get(STATE_COOKIE, "").partition(" ")
    query = request.query_params
    sent = query.get("state", "")
    if not expected or not secrets.compare_digest(sent, expected):
        return _login_page(request, next_url="/", error="The sign-in expired: please try again.")
    answer = Answer(
        state=sent,
        code=query.get("code"),
        error=query.get("error_description") or query.get("error"),
        redirect_uri=_callback(request, state, provider),
        source=request.client.host if request.client else None,
        cookie=request.cookies.get(COOKIE),
    )
    try:
        done = await run_in_threadpool(_finish, state, client, answer)
    except (Unauthenticated, NotReady, Conflict) as exc:
        response = _login_page(request, next_url=next_url, error=exc.message)
    else:
        if done.token is not None:
            response = RedirectResponse(safe_next(next_url), status_code=303)
            _set_cookie(response, request, done.token)
        elif done.linked:
            response = RedirectResponse("/account?linked=1", status_code=303)
        else:
            response = _login_page(request, next_url="/", waiting=client.label, status=202)
    response.delete_cookie(STATE_COOKIE, path="/login")
    return response


def _callback(request: Request, state: AppState, provider: str) -> str:
    """The redirect URI registered at the provider."""
    return _portal_address(request, state, "finish_federated_login", provider=provider)


def _portal_address(request: Request, state: AppState, route: str, **params: str) -> str:
    """A portal address as the provider must see it: on the public address when one is
    configured, else on the address this browser used."""
    found = request.url_for(route, **params)
    if state.public_url:
        return state.public_url.rstrip("/") + found.path
    return str(found)


def _provider(state: AppState, name: str) -> OidcClient:
    client = state.sign_in.get(name)
    if client is None:
        raise NotFound(f"no sign-in provider named {name!r}", field="provider")
    return client


def _to_provider(request: Request, url: str, sent: str, next_url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        f"{sent} {safe_next(next_url)}",
        max_age=int(ATTEMPT_TTL_S),
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


def _begin(
    state: AppState, client: OidcClient, back: str, link_user_id: int | None
) -> tuple[str, str]:
    authorization = client.authorization(back)  # discovery: HTTP, outside any transaction
    with state.db.session() as session:
        federated.begin(
            session,
            provider=client.name,
            authorization=authorization,
            now=state.clock(),
            link_user_id=link_user_id,
        )
    return authorization.url, authorization.state


@dataclass(frozen=True, slots=True)
class Answer:
    """What the provider's redirect back brought, and who the browser is signed in as."""

    state: str
    code: str | None
    error: str | None
    redirect_uri: str
    source: str | None
    cookie: str | None


@dataclass(frozen=True, slots=True)
class Finished:
    token: str | None = None  # a new session's cookie
    linked: bool = False  # an identity was linked to the signed-in account
    # neither: the person's first sign-in waits for an admin's approval


def _finish(state: AppState, client: OidcClient, answer: Answer) -> Finished:
    try:
        return _finish_checked(state, client, answer)
    except (Unauthenticated, NotReady, Conflict):
        with state.db.session() as session:
            passwords.record_failed_sign_in(
                session, "unknown", provider=client.name, source=answer.source, now=state.clock()
            )
        raise


def _finish_checked(state: AppState, client: OidcClient, answer: Answer) -> Finished:
    with state.db.session() as session:  # committed at once: the state is used up either way
        attempt = federated.take(
            session, provider=client.name, state=answer.state, now=state.clock()
        )
    if answer.error is not None:
        raise Unauthenticated(f"{client.label} did not sign you in: {answer.error[:200]}")
    if not answer.code:
        raise Unauthenticated(f"{client.label} sent no authorization code")
    id_token = client.exchange(
        code=answer.code, code_verifier=attempt.code_verifier, redirect_uri=answer.redirect_uri
    )
    claims = client.claims(
        id_token, audience=client.config.client_id, nonce=attempt.nonce, now=state.clock()
    )
    now = state.clock()
    with state.db.session() as session:
        if attempt.link_user_id is not None:
            signed = signed_in(session, answer.cookie, now)  # still the account that asked
            if signed.principal.user_id != attempt.link_user_id:
                raise Unauthenticated("sign in to the account to link first")
            federated.link(session, client.config, attempt.link_user_id, claims, now=now)
            return Finished(linked=True)
        user = federated.sign_in(session, client.config, claims, now=now)
        if user is None:
            return Finished()
        return Finished(
            open_session(session, user, provider=client.name, source=answer.source, now=now)
        )


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
async def logout(request: Request, signed: SignedPost, state: StateDep) -> Response:
    """Ends the facility's session and, for a federated sign-in whose provider offers it, the
    provider's too (RP-initiated logout: the provider sends the browser back to /login)."""
    cookie = request.cookies.get(COOKIE, "")
    await run_in_threadpool(_close, state, cookie)
    client = state.sign_in.get(signed.provider)
    back = _portal_address(request, state, "login_form")
    ended = await run_in_threadpool(client.end_session_url, back) if client else None
    response = RedirectResponse(ended or "/login", status_code=303)
    clear_session_cookie(response)
    return response


def _close(state: AppState, cookie: str) -> None:
    with state.db.session() as session:
        close_session(session, cookie, now=state.clock())


@router.get("/account")
def account(request: Request, signed: Signed, state: StateDep, linked: int = 0) -> Response:
    return _account_page(request, signed, state, linked=bool(linked))


def _account_page(
    request: Request,
    signed: SignedIn,
    state: AppState,
    *,
    status: int = 200,
    linked: bool = False,
    linked_error: str | None = None,
    **context: object,
) -> Response:
    with state.db.read() as session:
        identities = federated.identities_of(session, signed.principal.user_id)
    return render(
        request,
        "account.html",
        signed,
        status_code=status,
        title="Your account",
        identities=[
            (state.sign_in[p].label if p in state.sign_in else p, sub) for p, sub in identities
        ],
        providers=list(state.sign_in.values()),
        linked=linked,
        linked_error=linked_error,
        **context,
    )


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
        return _account_page(request, signed, state, status=422, errors=errors)
    return _account_page(request, signed, state, changed=True)
