"""A form field checked as the API checks the same field (its pydantic type), so a page and
the API refuse the same input with the same words."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from aifactory.errors import InvalidInput
from aifactory.faces.wording import reason_of


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def valid(kind: Any, value: object, field: str) -> Any:
    """`value` as the API's type `kind` takes it, or InvalidInput naming `field`."""
    try:
        return _adapter(kind).validate_python(value)
    except ValidationError as exc:
        raise InvalidInput(reason_of(dict(exc.errors()[0])), field=field) from None
