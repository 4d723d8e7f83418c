"""Errors as problem+json (RFC 9457): what every failure of the service looks like, and the
answers each route documents in OpenAPI."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec

from dispatcher.errors import (
    OutOfMemoryError,
    PushinboxError,
    TooManyError,
    UnauthorizedError,
    UnavailableError,
)
from httpapi.schemas import Problem

__all__ = ["PROBLEM", "error_parts", "errors", "on_error", "problem", "problem_body"]

log = structlog.get_logger("pushinbox.http")

PROBLEM = "application/problem+json"


def problem_body(status: int, title: str, detail: str, field: str | None = None,
                 code: str | None = None) -> bytes:
    return msgspec.json.encode(Problem(f"urn:pushinbox:problem:{code or status}", title, status,
                                       detail, field, code))


def problem(status: int, title: str, detail: str, field: str | None = None,
            code: str | None = None, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(problem_body(status, title, detail, field, code), status_code=status,
                    media_type=PROBLEM, headers=headers)


def error_parts(exc: Exception, path: str) -> tuple[int, bytes, dict[str, str] | None]:
    """What the service answers for an error an operation raised (status, problem+json body,
    headers), whichever path called it: our errors keep their status, code and field; anything
    else is a logged 500."""
    if isinstance(exc, OutOfMemoryError):
        # Every team's writes are refused until an operator acts: an error, saying what to do.
        log.error("redis_out_of_memory", error=str(exc), path=path,
                  advice="raise Redis's maxmemory, or free memory (pushinbox team delete, "
                         "a shorter --retention), and bound the team that filled it "
                         "(pushinbox team set T --max-messages N --max-body-bytes B)")
        return exc.http_status, problem_body(
            exc.http_status, exc.code.replace("_", " "),
            "Redis is out of memory and refuses writes; retry after the Retry-After seconds",
            exc.field, exc.code), {"Retry-After": "5"}
    if isinstance(exc, UnavailableError):
        # The driver's message names Redis's address and the socket error: for the log, not
        # for callers (where Redis runs is the operators' business).
        log.warning("redis_unreachable", error=str(exc), path=path)
        return exc.http_status, problem_body(
            exc.http_status, exc.code.replace("_", " "),
            "Redis is unreachable; retry after the Retry-After seconds", exc.field,
            exc.code), {"Retry-After": "1"}
    if isinstance(exc, PushinboxError):
        status = exc.http_status
        headers = None
        if status >= 500:
            log.error("operation_failed", error=str(exc), path=path)
        if isinstance(exc, UnauthorizedError):
            headers = {"WWW-Authenticate": "Bearer"}
        elif isinstance(exc, TooManyError):
            headers = {"Retry-After": "5"}
        return status, problem_body(status, exc.code.replace("_", " "), exc.message, exc.field,
                                    exc.code), headers
    log.exception("unexpected_error", path=path)
    return 500, problem_body(500, "internal error", "the service failed; the error is logged"), None


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The app's one exception handler: our errors keep their status, code and field;
    framework errors are mapped without leaking local details; anything else is a logged 500."""
    if isinstance(exc, PushinboxError):
        status, body, headers = error_parts(exc, request.url.path)
        return Response(body, status_code=status, media_type=PROBLEM, headers=headers)
    if isinstance(exc, ValidationException):
        field, detail = _validation_detail(exc)
        return problem(422, "invalid", detail, field, "invalid")
    if isinstance(exc, RecursionError | UnicodeDecodeError | msgspec.DecodeError):
        # A body nested too deep or not UTF-8: unreadable, not a failure of ours.
        return problem(400, "malformed", "the request body is not valid UTF-8 JSON within "
                       "the nesting limit", "body", "malformed")
    if isinstance(exc, ValueError) and "null byte" in str(exc):
        return problem(404, "not found", "no such resource")
    if isinstance(exc, HTTPException):
        detail = exc.detail or "request refused"
        if exc.status_code == 404:  # the framework's text may name files on this machine
            return problem(404, "not found", "no such resource")
        if exc.status_code == 413:
            return problem(413, "too large", "the request body is too large", "body",
                           "too_large")
        if exc.status_code == 400:
            detail = f"the request is malformed: {detail}"
        return problem(exc.status_code, detail.lower(), detail, None, None,
                       dict(exc.headers or {}))
    status, body, headers = error_parts(exc, request.url.path)
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def _validation_detail(exc: ValidationException) -> tuple[str | None, str]:
    """msgspec/Litestar validation errors name a key; ours name a field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            msg = str(item.get("message", exc.detail))
            if msg.startswith("Expected") or "at `$" in msg:
                path = msg.split("at `$", 1)[1].rstrip("`").lstrip(".") if "at `$" in msg else ""
                field = path or key
                return field, f"{field}: {msg.split(' - at ')[0]}" if field else msg
            return key, f"{key}: {msg}" if key else msg
    return None, str(exc.detail)


def errors(*extra: int) -> dict[int, ResponseSpec]:
    """The problem+json answers a route may give (documented for clients and the fuzzer)."""
    described = {
        400: "Malformed request (e.g. the body is not JSON)",
        401: "Missing, unknown or revoked token",
        403: "The token's scope does not allow this",
        404: "Unknown team, advisor, message or route",
        409: "The action does not fit the current state",
        413: "A message or a batch is too large",
        422: "Bad input; `field` names what is wrong",
        429: "The team stores its most messages or took its most this second (`field` "
             "messages), or the token (`field` "
             "authorization) or the team (`field` team) holds its most open live streams in "
             "this service process; retry after `Retry-After` seconds",
        503: "Redis is unreachable, or out of memory (code `out_of_memory`); retry after "
             "`Retry-After` seconds",
    }
    codes = (400, 401, 403, 404, 409, 422, 503, *extra)
    return {c: ResponseSpec(Problem, description=described[c], media_type=PROBLEM,
                            generate_examples=False) for c in codes}
