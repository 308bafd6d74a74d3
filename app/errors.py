"""Domain errors. Services raise them; one middleware turns them into the one error shape."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error the HTTP layer maps to a 4xx/5xx answer."""

    status = 500
    code = "internal"
    default_message = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}


class InvalidJson(AppError):
    status, code, default_message = 400, "invalid_json", "The request body is not valid JSON"


class BadRequest(AppError):
    status, code, default_message = 400, "bad_request", "Bad request"


class InvalidInput(AppError):
    status, code, default_message = 422, "invalid_input", "Some fields are invalid"


class Unauthenticated(AppError):
    status, code, default_message = 401, "unauthenticated", "Authentication required"

    def __init__(self, message: str | None = None, error: str = "invalid_token") -> None:
        super().__init__(
            message,
            headers={"WWW-Authenticate": f'Bearer realm="sonora", error="{error}"'},
        )


class Forbidden(AppError):
    status, code, default_message = 403, "forbidden", "You are not allowed to do this"


class NotFound(AppError):
    status, code, default_message = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, default_message = 409, "conflict", "Conflict"


class TooLarge(AppError):
    status, code, default_message = 413, "too_large", "The request body is too large"


class UnsupportedMediaType(AppError):
    status, code, default_message = 415, "unsupported_media_type", "Unsupported media type"


class RangeNotSatisfiable(AppError):
    status, code, default_message = 416, "range_not_satisfiable", "Range not satisfiable"


class RateLimited(AppError):
    status, code, default_message = 429, "rate_limited", "Too many requests; try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class Unavailable(AppError):
    status, code, default_message = 503, "unavailable", "A service this needs is unavailable"
