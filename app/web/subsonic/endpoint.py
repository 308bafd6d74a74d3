"""`/rest/<method>` and `/rest/<method>.view`: read the parameters, pick the format, find the
method, authenticate, call it, and answer in the envelope — errors included, always HTTP 200
(SPEC 13). Everything under /rest answers here, so no path, HTTP method or failure there ends as
an HTML page or a 500: the middlewares leave /rest to this handler (no cookies, no CSRF — a
/rest request carries its own credentials and no ambient ones).

CORS: browser players served from another origin (Feishin's web build, Airsonic-refix, Sonixd)
call /rest directly, so every /rest answer — envelopes, errors, streams, pictures, 304 and 416
included — carries `Access-Control-Allow-Origin: *`, set as the response is prepared (a stream is
prepared inside its handler, after which no middleware can add a header). `*` is right because a
/rest request's credentials are in its parameters, which the calling page already has: a cookie is
never one, so `Access-Control-Allow-Credentials` is never sent. `OPTIONS` is the preflight: 204,
before anything is read or authenticated. Nothing else in the app answers cross-origin."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from app.errors import AppError
from app.repos.db import DatabaseUnavailable
from app.web import keys
from app.web.middlewares import is_subsonic
from app.web.subsonic import envelope
from app.web.subsonic.auth import authenticate
from app.web.subsonic.envelope import Format
from app.web.subsonic.errors import GENERIC, NOT_AUTHORIZED, SubsonicError, from_app_error
from app.web.subsonic.params import BodyUnreadable, Params, read_params
from app.web.subsonic.registry import ADMIN, PUBLIC, Call, MethodResult, Methods, SubsonicApi

log = logging.getLogger("sonora.subsonic")
PREFIX = "/rest"  # middlewares.is_subsonic leaves it to this handler
ALLOWED = ("GET", "HEAD", "POST")
CORS = {
    "Access-Control-Allow-Origin": "*",
    # What players read on a cross-origin answer beyond the safelisted few: seeking and downloads.
    "Access-Control-Expose-Headers": "Accept-Ranges, Content-Disposition, Content-Length,"
                                     " Content-Range, Content-Type, ETag, Last-Modified, Retry-After",
}
PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Max-Age": "86400",
    "Allow": "GET, HEAD, POST, OPTIONS",
    "Vary": "Access-Control-Request-Headers",
}
# Allowed when a preflight names no headers, or names them unreadably.
SAFE_HEADERS = ("Accept, Authorization, Content-Type, If-Modified-Since, If-None-Match, If-Range,"
                " Range, X-Requested-With")
# A comma-separated list of header names (RFC 9110 tokens): only such a list is echoed back.
HEADER_NAMES = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*",
                          re.ASCII)
HEADER_NAMES_MAX = 1024


async def rest(request: web.Request) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return _preflight(request)
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


def _preflight(request: web.Request) -> web.Response:
    """The answer to a CORS preflight (any OPTIONS under /rest): 204 and what may be sent. The
    headers the browser asks for are allowed as named (the answer is `*` for every origin and
    carries no credential, so no header is worth refusing), else a fixed list."""
    asked = request.headers.get("Access-Control-Request-Headers", "").strip()
    fits = len(asked) <= HEADER_NAMES_MAX and HEADER_NAMES.fullmatch(asked) is not None
    return web.Response(status=204, headers={
        **PREFLIGHT, "Access-Control-Allow-Headers": asked if fits else SAFE_HEADERS})


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the CORS headers on every answer under /rest, and only there."""
    if is_subsonic(request):
        response.headers.update(CORS)


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
    there), each answer readable from any origin."""
    app[keys.SUBSONIC] = SubsonicApi(tables, server_version)
    app.on_response_prepare.append(cors_headers)
    app.router.add_route("*", PREFIX + "/{method:[^/]+}", rest, name="subsonic")
    app.router.add_route("*", PREFIX + "{rest:(/.*)?}", rest, name="subsonic_other")
