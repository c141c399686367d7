"""The errors services raise. `api.errors` maps each kind to one HTTP status, once.

Every error names the field at fault (where there is one) and a reason a person can act on.
"""

from __future__ import annotations


class AifactoryError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(AifactoryError):
    code = "invalid_input"


class Unauthenticated(AifactoryError):
    code = "unauthenticated"


class PermissionDenied(AifactoryError):
    code = "permission_denied"


class NotFound(AifactoryError):
    code = "not_found"


class Conflict(AifactoryError):
    code = "conflict"


class NotReady(AifactoryError):
    code = "not_ready"
