"""Errors on pages: the same errors the API maps to JSON, shown as a page a person can act on
(sign in, go back, fix the form). Anything outside `/api/` is a page (api.errors asks)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aifactory.web.session import SignInRequired, sign_in_url
from aifactory.web.templating import render

TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Not possible now",
    413: "Too large",
    422: "Please check your input",
    500: "Something went wrong",
    503: "Not ready",
}


def page_error(request: Request, status: int, message: str, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request, exc)
    return render(
        request,
        "error.html",
        getattr(request.state, "signed", None),
        status_code=status,
        title=TITLES.get(status, "Error"),
        status=status,
        message=message,
    )


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = sign_in_url(exc.next_url)
    if request.headers.get("HX-Request"):
        return HTMLResponse("", status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
