"""Field checks shared by services; each failure names the field (InvalidInput.details)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, overload

from app.errors import InvalidInput

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")


class Fields:
    """Collects field errors, then raises them together."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self) -> None:
        if self.errors:
            raise InvalidInput(details={"fields": self.errors})


def invalid_text(value: Any, path: str = "") -> str | None:
    """Where in `value` (a decoded JSON value, a query or a form) a string is not valid Unicode —
    a lone surrogate such as `"\\ud800"` cannot be encoded, stored or hashed — or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and invalid_text(key) is not None:
            return f"{path}.<key>" if path else "<key>"
        found = invalid_text(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def clean_text(value: Any, name: str, errors: Fields, *, min_len: int = 0, max_len: int) -> str:
    """A string without control characters, stripped, within the bounds."""
    if not isinstance(value, str):
        errors.add(name, "must be a string")
        return ""
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) == "Cc" for ch in text if ch not in "\n\t"):
        errors.add(name, "must not contain control characters")
    if not min_len <= len(text) <= max_len:
        errors.add(name, f"must be {min_len} to {max_len} characters")
    return text


def email(value: Any, errors: Fields) -> str:
    text = clean_text(value, "email", errors, min_len=3, max_len=254)
    if text and not EMAIL.match(text):
        errors.add("email", "must be an email address")
    return text


def username(value: Any, errors: Fields) -> str:
    text = clean_text(value, "username", errors, min_len=3, max_len=32)
    if text and not USERNAME.match(text):
        errors.add("username", "3 to 32 letters, digits, '.', '_' or '-'")
    return text


def password(value: Any, errors: Fields, name: str = "password") -> str:
    if not isinstance(value, str):
        errors.add(name, "must be a string")
        return ""
    if not 8 <= len(value) <= 128:
        errors.add(name, "must be 8 to 128 characters")
    return value


@overload
def rfc3339(value: dt.datetime) -> str: ...
@overload
def rfc3339(value: None) -> None: ...
@overload
def rfc3339(value: dt.datetime | None) -> str | None: ...


def rfc3339(value: dt.datetime | None) -> str | None:
    """UTC times as RFC 3339 with a Z (MySQL DATETIME values are naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"
