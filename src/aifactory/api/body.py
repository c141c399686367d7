"""Parse a request body from its bytes in one pass (pydantic-core parses and validates).

For hot routes: FastAPI's own body handling decodes JSON to Python objects first and then
validates them. Errors are raised as FastAPI's `RequestValidationError`, located under "body",
so `api.errors` answers them like any other.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def parse_body(model: type[Model], raw: bytes) -> Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
