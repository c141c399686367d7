"""The one wording of an input refused, in the API's error body and on a portal's form alike."""

from __future__ import annotations

from typing import Any


def reason_of(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "extra_forbidden":
        return "is not a known field"
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")
