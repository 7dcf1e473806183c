"""Domain errors that carry their HTTP status; web/handlers.py renders them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class NotFound(DomainError):
    status_code = 404
    title = "Not found"


class PermissionDenied(DomainError):
    status_code = 403
    title = "Forbidden"


class NotAuthenticated(DomainError):
    status_code = 401
    title = "Sign in required"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class Invalid(DomainError):
    status_code = 422
    title = "Invalid input"


class TooManyAttempts(DomainError):
    status_code = 429
    title = "Too many attempts"
