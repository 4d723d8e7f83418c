"""Every error pushinbox raises, rooted in one class (as redis-py roots its errors in RedisError).

This module imports nothing of ours, so any layer (API, CLI, HTTP, workers) can catch
``PushinboxError`` and map the subclasses to an exit code or an HTTP status.
"""

from __future__ import annotations

__all__ = ["ConflictError", "ForbiddenError", "MalformedError", "NotFoundError", "NotYoursError",
           "OutOfMemoryError", "PushinboxError", "TooLargeError", "TooManyError",
           "UnauthorizedError", "UnavailableError", "ValidationError", "error_for_code"]


class PushinboxError(Exception):
    """Base of every pushinbox error; ``code`` is a stable machine-readable name."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ValidationError(PushinboxError):
    """Bad input: a field is missing, malformed or out of range. Nothing was changed."""

    code = "invalid"
    http_status = 422


class TooLargeError(ValidationError):
    """A message or a batch over the size limits. Nothing was changed."""

    code = "too_large"
    http_status = 413


class MalformedError(ValidationError):
    """A request that cannot be read at all (a header or body of the wrong form): HTTP 400."""

    code = "malformed"
    http_status = 400


class UnauthorizedError(PushinboxError):
    """No valid credentials (HTTP): a missing, unknown or revoked token."""

    code = "unauthorized"
    http_status = 401


class NotFoundError(PushinboxError):
    """An unknown team, advisor, role or message."""

    code = "not_found"
    http_status = 404


class ConflictError(PushinboxError):
    """An action in the wrong state (e.g. next while logged out, replying to archived mail)."""

    code = "conflict"
    http_status = 409


class NotYoursError(ConflictError):
    """An advisor acted on a message that is not in their hands."""

    code = "not_yours"
    http_status = 403


class ForbiddenError(PushinboxError):
    """The caller may not do this (e.g. a push-mode advisor picking a specific message)."""

    code = "forbidden"
    http_status = 403


class TooManyError(PushinboxError):
    """More of something at once than one caller may hold (e.g. a token's open live
    streams in a service process); retry once one has ended."""

    code = "too_many"
    http_status = 429


class UnavailableError(PushinboxError):
    """Redis is unreachable; the operation did not happen and may be retried."""

    code = "unavailable"
    http_status = 503


class OutOfMemoryError(UnavailableError):
    """Redis is at its ``maxmemory`` (deploy.md: ``noeviction``) and refuses writes; the
    operation did not happen. Operators free memory or raise the limit; callers retry."""

    code = "out_of_memory"


_BY_CODE: dict[str, type[PushinboxError]] = {
    cls.code: cls
    for cls in (
        PushinboxError,
        ValidationError,
        TooLargeError,
        MalformedError,
        UnauthorizedError,
        NotFoundError,
        ConflictError,
        NotYoursError,
        ForbiddenError,
        TooManyError,
        UnavailableError,
        OutOfMemoryError,
    )
}


def error_for_code(code: str, message: str, field: str | None = None) -> PushinboxError:
    """Build the error a Lua script reported as ``PI <code> <field> <message>``."""
    return _BY_CODE.get(code, PushinboxError)(message, field=field)
