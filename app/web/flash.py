"""One-shot messages that survive a POST → redirect → GET, carried in a short-lived signed cookie.

Nothing is stored on the server: the messages travel in the cookie, signed so that nobody can
plant text in someone else's page (it is escaped when shown all the same)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from aiohttp import web

from app.web import keys

FLASH_COOKIE = "sonora_flash"
MAX_AGE = 120  # long enough for the redirect, short enough not to greet a later visit
LEVELS = ("success", "error", "info")


@dataclass(frozen=True)
class Flash:
    level: str
    message: str


def _encode(messages: list[Flash]) -> str:
    raw = json.dumps([[m.level, m.message[:300]] for m in messages], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def add_flash(request: web.Request, response: web.StreamResponse, message: str,
              level: str = "success") -> None:
    """Queue a message for the next page this browser renders."""
    payload = _encode([Flash(level if level in LEVELS else "info", message)])
    signature = request.app[keys.AUTH].signer.sign("flash", payload)
    response.set_cookie(FLASH_COOKIE, f"{payload}.{signature}", max_age=MAX_AGE, httponly=True,
                        samesite="Lax", secure=request.app[keys.CONFIG].secure_cookies, path="/")


def read_flashes(request: web.Request) -> list[Flash]:
    """The messages waiting in the request's cookie; forged or garbled cookies give none."""
    value = request.cookies.get(FLASH_COOKIE, "")
    payload, _, signature = value.partition(".")
    if not payload or not signature or len(value) > 4000:
        return []
    if not request.app[keys.AUTH].signer.verify("flash", payload, signature):
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return []
    if not isinstance(data, list):
        return []
    return [
        Flash(str(level), str(message)) for level, message in
        (item for item in data if isinstance(item, list) and len(item) == 2)
        if level in LEVELS
    ]


def consume_flashes(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the cookie once its messages have been shown."""
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/")
