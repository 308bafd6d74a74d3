"""A /rest request's parameters: the query string and a form body merged (formPost), repeats
kept, read through typed getters that answer the reference's errors.

- a required parameter that is missing (or empty) → error 10;
- a value that is not what the parameter takes (a number that is not one, a boolean that is not
  true/false/1/0) → error 10, naming the parameter and what it takes;
- an id that cannot be the id of anything → error 70 ("not found"): ids are opaque strings to a
  client, so a malformed one is simply one that names nothing.
"""

from __future__ import annotations

import re

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from app.web.subsonic.errors import MISSING_PARAMETER, NOT_FOUND, SubsonicError

ASCII_INT = re.compile(r"-?[0-9]{1,19}")
ASCII_ID = re.compile(r"[0-9]{1,19}")
MAX_ID = 2**63 - 1
TRUE = {"true", "1"}
FALSE = {"false", "0"}


class BodyUnreadable(Exception):
    """The form body could not be read (not UTF-8, or over the size limit)."""


async def read_params(request: web.Request) -> MultiDictProxy[str]:
    """The query string, then an `application/x-www-form-urlencoded` body, in one MultiDict."""
    values: MultiDict[str] = MultiDict(request.query)
    if (request.method == "POST" and request.body_exists
            and request.content_type == "application/x-www-form-urlencoded"):
        try:
            form = await request.post()
        except UnicodeDecodeError as exc:
            raise BodyUnreadable("The form body is not valid UTF-8") from exc
        except web.HTTPRequestEntityTooLarge as exc:
            raise BodyUnreadable("The form body is too large") from exc
        for key, value in form.items():
            if isinstance(value, str):
                values.add(key, value)
    return MultiDictProxy(values)


class Params:
    """Typed reads of a request's parameters (see the module docstring for the errors)."""

    def __init__(self, values: MultiDictProxy[str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        """The first value of `name`, or None when absent or empty."""
        value = self.values.get(name)
        return value if value else None

    def text(self, name: str) -> str:
        """A required string."""
        value = self.get(name)
        if value is None:
            raise SubsonicError(MISSING_PARAMETER, f"Required parameter '{name}' is missing")
        return value

    def optional_text(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name)
        return default if value is None else value

    def texts(self, name: str) -> list[str]:
        """Every non-empty value of a repeatable parameter (`id`, `songId`, …), in order."""
        return [value for value in self.values.getall(name, []) if value]

    def ids(self, name: str, most: int) -> list[str]:
        """A required repeatable id parameter: at least one value (else 10), at most `most`."""
        values = self.texts(name)
        if not values:
            raise SubsonicError(MISSING_PARAMETER, f"Required parameter '{name}' is missing")
        if len(values) > most:
            raise SubsonicError(MISSING_PARAMETER, f"At most {most} ids at once")
        return values

    def integer(self, name: str, default: int | None = None, *, lo: int = -MAX_ID,
                hi: int = MAX_ID, clamp: bool = False) -> int:
        """An integer in [lo, hi]; required when `default` is None. With `clamp`, a number
        outside the bounds is brought within them (an app asking for size=100000 gets the
        most there is) instead of refused."""
        raw = self.get(name)
        if raw is None:
            if default is None:
                raise SubsonicError(MISSING_PARAMETER, f"Required parameter '{name}' is missing")
            return default
        raw = raw.strip()
        if not ASCII_INT.fullmatch(raw):
            raise SubsonicError(MISSING_PARAMETER, f"Parameter '{name}' must be an integer")
        number = int(raw)
        if lo <= number <= hi:
            return number
        if clamp:
            return max(lo, min(hi, number))
        raise SubsonicError(MISSING_PARAMETER,
                            f"Parameter '{name}' must be between {lo} and {hi}")

    def flag(self, name: str, default: bool) -> bool:
        """A boolean: true/false in any case, or 1/0."""
        raw = self.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise SubsonicError(MISSING_PARAMETER, f"Parameter '{name}' must be true or false")


def numeric_id(value: str, prefix: str = "") -> int:
    """The number in an opaque id written `<prefix><digits>` (`"al-12"` → 12 with prefix "al-");
    anything else names nothing: error 70."""
    digits = value[len(prefix):] if prefix and value.startswith(prefix) else (
        value if not prefix else "")
    if not ASCII_ID.fullmatch(digits) or not 0 < int(digits) <= MAX_ID:
        raise SubsonicError(NOT_FOUND, "Not found")
    return int(digits)
