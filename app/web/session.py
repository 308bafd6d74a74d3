"""The browser's session: token cookies, the CSRF token, and the pre-login cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from app.services.security import Signer, random_token

if TYPE_CHECKING:
    from app.services.auth import TokenPair

ACCESS_COOKIE = "sonora_access"
REFRESH_COOKIE = "sonora_refresh"
PRE_COOKIE = "sonora_pre"
CSRF_HEADER = "X-CSRF-Token"


def csrf_for(signer: Signer, session_id: int) -> str:
    """The CSRF token of a session: a signature, so nothing has to be stored."""
    return signer.sign("csrf", str(session_id))


def set_auth_cookies(response: web.StreamResponse, pair: TokenPair, secure: bool) -> None:
    response.set_cookie(ACCESS_COOKIE, pair.access_token, max_age=pair.expires_in, httponly=True,
                        samesite="Lax", secure=secure, path="/")
    response.set_cookie(REFRESH_COOKIE, pair.refresh_token, max_age=30 * 24 * 3600, httponly=True,
                        samesite="Lax", secure=secure, path="/")


def clear_auth_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(ACCESS_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path="/")


def pre_login_token(request: web.Request) -> tuple[str, bool]:
    """The anonymous CSRF token (double-submit cookie); True when it must be set now."""
    existing = request.cookies.get(PRE_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return random_token(24), True


def set_pre_cookie(response: web.StreamResponse, token: str, secure: bool) -> None:
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="Lax", secure=secure, path="/")
