"""Subsonic's errors: the codes of the reference, and the domain errors mapped onto them.

A Subsonic error is an HTTP 200 answer with `status="failed"` and `error{code, message, helpUrl?}`
(SPEC 13), rendered by `envelope.failed` in the format the request asked for."""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidJson,
    NotFound,
    RateLimited,
    Unauthenticated,
)

# The codes of the reference (content/en/docs/api-reference.md, "Error handling").
GENERIC = 0
MISSING_PARAMETER = 10
CLIENT_TOO_OLD = 20
SERVER_TOO_OLD = 30
WRONG_CREDENTIALS = 40
TOKEN_AUTH_UNSUPPORTED = 41
MECHANISM_UNSUPPORTED = 42
CONFLICTING_MECHANISMS = 43
INVALID_API_KEY = 44
NOT_AUTHORIZED = 50
TRIAL_OVER = 60
NOT_FOUND = 70


class SubsonicError(Exception):
    """Raised by a method (or the dispatcher) to answer a Subsonic error envelope."""

    def __init__(self, code: int, message: str, *, help_url: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help_url = help_url
        self.headers = dict(headers or {})


def from_app_error(exc: AppError) -> SubsonicError:
    """The Subsonic error for a domain error a service raised (the one mapping, as
    `error_middleware` is for /api)."""
    if isinstance(exc, NotFound):
        return SubsonicError(NOT_FOUND, exc.message)
    if isinstance(exc, Forbidden):
        return SubsonicError(NOT_AUTHORIZED, exc.message)
    if isinstance(exc, Unauthenticated):
        return SubsonicError(WRONG_CREDENTIALS, exc.message)
    if isinstance(exc, InvalidInput | BadRequest | InvalidJson):
        return SubsonicError(MISSING_PARAMETER, _with_fields(exc))
    if isinstance(exc, RateLimited):
        return SubsonicError(GENERIC, f"{exc.message} (in {exc.retry_after} s)",
                             headers=exc.headers)
    if isinstance(exc, Conflict):
        return SubsonicError(GENERIC, exc.message)
    return SubsonicError(GENERIC, exc.message)


def _with_fields(exc: AppError) -> str:
    """The message, naming each invalid field (`details.fields` of InvalidInput)."""
    fields = (exc.details or {}).get("fields")
    if not isinstance(fields, dict) or not fields:
        return exc.message
    named = "; ".join(f"{name} {problem}" for name, problem in fields.items())
    return f"{exc.message}: {named}"
