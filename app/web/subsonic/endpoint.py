"""`/rest/<method>` and `/rest/<method>.view`: read the parameters, pick the format, find the
method, authenticate, call it, and answer in the envelope — errors included, always HTTP 200
(SPEC 13). Everything under /rest answers here, so no path, HTTP method or failure there ends as
an HTML page or a 500: the middlewares leave /rest to this handler (no cookies, no CSRF — a
/rest request carries its own credentials and no ambient ones)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from app.errors import AppError
from app.repos.db import DatabaseUnavailable
from app.web import keys
from app.web.subsonic import envelope
from app.web.subsonic.auth import authenticate
from app.web.subsonic.envelope import Format
from app.web.subsonic.errors import GENERIC, NOT_AUTHORIZED, SubsonicError, from_app_error
from app.web.subsonic.params import BodyUnreadable, Params, read_params
from app.web.subsonic.registry import ADMIN, PUBLIC, Call, MethodResult, Methods, SubsonicApi

log = logging.getLogger("sonora.subsonic")
PREFIX = "/rest"  # middlewares.is_subsonic leaves it to this handler
ALLOWED = ("GET", "HEAD", "POST")


async def rest(request: web.Request) -> web.StreamResponse:
    api = request.app[keys.SUBSONIC]
    try:
        values = await read_params(request)
    except BodyUnreadable as exc:
        fmt, _ = envelope.resolve_format(request.query)
        return envelope.failed(SubsonicError(GENERIC, str(exc)), fmt, api.server_version)
    fmt, problem = envelope.resolve_format(values)
    match = request.match_info
    name = (match.get("method") or match.get("rest", "").lstrip("/")).removesuffix(".view")
    try:
        if problem is not None:
            raise problem
        result = await _dispatch(request, api, Params(values), name)
    except SubsonicError as exc:
        return envelope.failed(exc, fmt, api.server_version)
    except AppError as exc:
        return envelope.failed(from_app_error(exc), fmt, api.server_version)
    except DatabaseUnavailable as exc:
        log.error("database unavailable during /rest/%s: %s", name[:64], exc)
        return _failed(fmt, api, "The database is unavailable; try again shortly")
    except (asyncio.CancelledError, ConnectionError):
        raise  # the client hung up: the middlewares log it as such
    except Exception:
        # Only the method's name is logged: parameters may hold credentials (p, t, s, apiKey).
        log.exception("unhandled error in /rest/%s", name[:64])
        return _failed(fmt, api, "Internal error; it has been logged")
    if isinstance(result, web.StreamResponse):
        return result
    return envelope.ok(result, fmt, api.server_version)


def _failed(fmt: Format, api: SubsonicApi, message: str) -> web.Response:
    return envelope.failed(SubsonicError(GENERIC, message), fmt, api.server_version)


async def _dispatch(request: web.Request, api: SubsonicApi, params: Params, name: str
                    ) -> MethodResult:
    if request.method not in ALLOWED:
        raise SubsonicError(GENERIC, f"/rest answers GET and POST, not {request.method[:16]}")
    method = api.find(name) if name else None
    if method is None:
        shown = name[:64] or "(none)"
        raise SubsonicError(GENERIC, f"Unknown method {shown!r}: this server does not implement"
                            " it (see getOpenSubsonicExtensions and the README)")
    if method.access == PUBLIC:
        return await method.handler(Call(request, params, None, "none", api))
    caller, mechanism = await authenticate(request, params.values)
    request[keys.LOG_USER] = caller.user_id
    if method.access == ADMIN and not caller.is_admin:
        raise SubsonicError(NOT_AUTHORIZED, f"{method.name} is for admins only")
    return await method.handler(Call(request, params, caller, mechanism, api))


def install(app: web.Application, tables: list[Methods], server_version: str) -> None:
    """Serve every method of `tables` under /rest (and an error envelope for any other path
    there)."""
    app[keys.SUBSONIC] = SubsonicApi(tables, server_version)
    app.router.add_route("*", PREFIX + "/{method:[^/]+}", rest, name="subsonic")
    app.router.add_route("*", PREFIX + "{rest:(/.*)?}", rest, name="subsonic_other")
