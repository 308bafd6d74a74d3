"""Every typed application key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:  # string type arguments below name these
    from app.adapters.bus import Bus  # noqa: F401
    from app.adapters.kv import KeyValue  # noqa: F401
    from app.config import Config  # noqa: F401
    from app.db import Database  # noqa: F401
    from app.services.auth import AuthService, Principal  # noqa: F401
    from app.services.users import UserService  # noqa: F401

CONFIG = web.AppKey["Config"]("config")
DB = web.AppKey["Database"]("db")
KV = web.AppKey["KeyValue"]("kv")
BUS = web.AppKey["Bus"]("bus")
AUTH = web.AppKey["AuthService"]("auth")
USERS = web.AppKey["UserService"]("users")
OPENAPI = web.AppKey("openapi", dict[str, Any])

# Per-request state set by the middlewares.
PRINCIPAL = web.RequestKey["Principal"]("principal")
AUTH_ERROR = web.RequestKey("auth_error", Exception)
VIA_COOKIE = web.RequestKey("via_cookie", bool)
COOKIES_SET = web.RequestKey("cookies_set", bool)
CLEAR_COOKIES = web.RequestKey("clear_cookies", bool)
