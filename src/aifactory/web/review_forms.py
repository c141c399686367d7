"""Form plumbing shared by the calls, proposals, datasets and audit pages: reading numbers and
dates typed into a form as the API would read them, and turning a service's refusal into a
message next to the field it names."""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import UTC, datetime

from fastapi.responses import RedirectResponse

from aifactory.errors import AifactoryError, Conflict, InvalidInput, NotFound


def form_problem(exc: AifactoryError, fields: Collection[str]) -> tuple[dict[str, str], int]:
    """The message of a refused form, keyed by the field it names ("_": the form as a whole),
    and the status to answer with. Anything not about the input (a permission, an object that
    does not exist for the caller) is raised again for the error page."""
    named = exc.field if exc.field is not None and exc.field in fields else None
    if isinstance(exc, NotFound) and named is None:
        raise exc
    if not isinstance(exc, InvalidInput | Conflict | NotFound):
        raise exc
    return {named or "_": exc.message}, 409 if isinstance(exc, Conflict) else 422


def number(text: str, field: str) -> float:
    """A number typed into a form, or InvalidInput naming the field (as the API would)."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise InvalidInput("must be a number", field=field) from None
    if not math.isfinite(value):
        raise InvalidInput("must be a finite number", field=field)
    return value


def whole(text: str, field: str) -> int:
    try:
        return int(text.strip() or "0")
    except ValueError:
        raise InvalidInput("must be a whole number", field=field) from None


def moment(text: str, field: str) -> float:
    """A date (midnight) or date and time from a form, read as UTC: UNIX seconds."""
    try:
        found = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("must be a date, YYYY-MM-DD, or a date and time", field=field) from None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).timestamp()


def day_text(at: datetime | float) -> str:
    """A date as a date input shows it."""
    found = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return found.strftime("%Y-%m-%d")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
