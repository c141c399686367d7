"""Jinja2 set-up and `render`: every page gets the signed-in user, the navigation their roles
allow, the CSRF token for its forms, and the portal's security headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from aifactory import __version__
from aifactory.faces.state import AppState
from aifactory.services import maintenance
from aifactory.services.login import SignedIn
from aifactory.web import charts
from aifactory.web.nav import navigation

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Everything from the facility itself; no inline script (htmx's own indicator styles are off).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: float | None, *, seconds: bool = False) -> str:
    """UTC, to the minute (or second): one format on every page."""
    if value is None:
        return "—"
    moment = datetime.fromtimestamp(value, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def duration(value: float | None) -> str:
    if value is None:
        return "—"
    seconds = max(0, round(value))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}".replace(",", " ")


def euros(cents: int | None) -> str:
    return "—" if cents is None else f"€ {cents / 100:,.2f}".replace(",", " ")


MOMENT_KEYS = frozenset({"at", "until", "since", "valid_from", "valid_to"})  # and every *_at


def detail_items(detail: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An audit event's detail as (name, text) pairs for people: moments as dates in UTC,
    lists comma-separated, anything nested as compact JSON."""
    return [(key, _detail_text(key, value)) for key, value in sorted((detail or {}).items())]


def _detail_text(key: str, value: Any) -> str:
    is_moment = key in MOMENT_KEYS or key.endswith("_at")
    if is_moment and isinstance(value, int | float) and not isinstance(value, bool):
        return when(float(value), seconds=True)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return "—" if value is None else str(value)


def _svg(chart: charts.Svg) -> Markup:
    return Markup(chart.markup)  # noqa: S704 - built by web.charts, which escapes every text


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(
    when=when, duration=duration, number=number, euros=euros, svg=_svg, detail_items=detail_items
)
templates.env.globals.update(version=__version__)


def render(
    request: Request,
    template: str,
    signed: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.update(
        announcements=_announcements(request) if signed else [],
        me=signed.principal if signed else None,
        signed=signed,
        csrf_token=signed.csrf_token if signed else "",
        nav=navigation(signed.principal) if signed else [],
        path=request.url.path,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    if providers := _sign_in_origins(request):
        # Signing out (and linking an identity) posts a form that the portal answers with a
        # redirect to the provider; browsers hold that redirect to form-action too.
        policy = SECURITY_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {' '.join(providers)}"
        )
    return response


def _announcements(request: Request) -> list[maintenance.WindowView]:
    """Maintenance on now or soon: a banner on every page for everyone signed in."""
    state = getattr(request.app.state, "aifactory", None)
    if not isinstance(state, AppState):
        return []
    with state.db.read() as session:
        return maintenance.announced(session, now=state.clock())


def _sign_in_origins(request: Request) -> list[str]:
    state = getattr(request.app.state, "aifactory", None)
    clients = state.sign_in.values() if isinstance(state, AppState) else ()
    return sorted({origin for client in clients for origin in client.origins()})
