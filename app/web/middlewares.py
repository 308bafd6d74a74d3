"""Request logging, errors in one shape, security headers, who is calling, and CSRF."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web
from aiohttp.helpers import parse_mimetype

from app.errors import AppError, BadRequest, Forbidden, InvalidInput, Unauthenticated
from app.repos.db import DatabaseUnavailable
from app.services.security import constant_time_equal
from app.web import keys
from app.web.session import (
    ACCESS_COOKIE,
    CSRF_HEADER,
    PRE_COOKIE,
    REFRESH_COOKIE,
    clear_auth_cookies,
    csrf_for,
    set_auth_cookies,
)

log = logging.getLogger("sonora.http")
access_log = logging.getLogger("sonora.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def is_api(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def is_subsonic(request: web.Request) -> bool:
    """/rest (app/web/subsonic): its handler reads its own input, authenticates its own way (no
    cookies, so no CSRF) and answers every error in its own envelope."""
    return request.path == "/rest" or request.path.startswith("/rest/")


def error_json(status: int, code: str, message: str, details: dict | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    body: dict = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return web.json_response(body, status=status, headers=headers)


HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    416: "range_not_satisfiable", 422: "invalid_input", 429: "rate_limited", 503: "unavailable",
}


CLIENT_GONE = 499  # the access log's status for a request whose client hung up (nginx's)


def client_gone(request: web.Request) -> bool:
    """Whether the client has closed the connection (or it was lost)."""
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: no query string (signed URLs), no tokens, no bodies."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (asyncio.CancelledError, ConnectionError):
        if client_gone(request):
            # aiohttp cancels the handler of a client that hung up: not a server error.
            status = CLIENT_GONE
            log.info("client disconnected during %s %s", request.method, request.path)
        raise
    finally:
        if access_log.isEnabledFor(logging.INFO):
            principal = request.get(keys.PRINCIPAL)
            user = principal.user_id if principal else request.get(keys.LOG_USER, "-")
            path = request.path
            if path.startswith("/s/"):
                path = "/s/…"  # a share link's token is a credential: never logged
            ACCESS_LINES.add(
                f"{request.method} {path} {status} "
                f"{(time.perf_counter() - started) * 1000:.2f}ms "
                f"user={user}"
            )


class AccessLines:
    """Access-log lines, one per request, handed to the logger in batches: a log call per request
    costs more than many small API requests themselves. Flushed every 50 ms and at shutdown."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.lines: list[str] = []
        self._scheduled: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        self.lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {line}")
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        self._scheduled = None
        if self.lines:
            lines, self.lines = self.lines, []
            access_log.info("%s", "\n".join(lines))


ACCESS_LINES = AccessLines()


def _render_error(request: web.Request, status: int, message: str) -> web.Response:
    template = f"errors/{status}.html" if status in (403, 404) else "errors/error.html"
    if status >= 500 and status != 503:
        template = "errors/500.html"
    try:
        response = aiohttp_jinja2.render_template(
            template, request, {"status": status, "message": message}, status=status
        )
    except Exception:  # noqa: BLE001 - a broken template must not hide the original error
        log.exception("error page failed to render")
        response = web.Response(status=status, text=f"{status} {message}")
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors and HTTP errors become the one JSON shape under /api, an error page elsewhere."""
    try:
        return await handler(request)
    except AppError as exc:
        if is_api(request):
            return error_json(exc.status, exc.code, exc.message, exc.details, exc.headers)
        if isinstance(exc, Unauthenticated):
            raise web.HTTPFound(login_url(request)) from None
        response = _render_error(request, exc.status, exc.message)
        response.headers.update(exc.headers)
        return response
    except DatabaseUnavailable as exc:
        log.error("database unavailable: %s", exc)
        if is_api(request):
            return error_json(503, "unavailable", "The database is unavailable")
        return _render_error(request, 503, "The database is unavailable; try again shortly")
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api(request) and exc.status not in (403, 404, 405):
            raise
        if not is_api(request):
            return _render_error(request, exc.status, exc.reason)
        code = HTTP_CODES.get(exc.status, "error")
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        message = exc.reason
        if exc.status == 413:
            message = "The request body is too large"
        return error_json(exc.status, code, message, headers=headers)
    except ConnectionError:
        if not client_gone(request):
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_json(500, "internal", "Internal error") if is_api(request) else \
                _render_error(request, 500, "Something went wrong on our side")
        # The client hung up mid-request: nothing can be answered, and nothing went wrong here.
        log.info("client disconnected during %s %s", request.method, request.path)
        return web.Response(status=CLIENT_GONE, reason="Client Closed Request")
    except UnicodeDecodeError:
        # Bytes a client sent that are not UTF-8 (a multipart form field read by `post()`).
        if is_api(request):
            return error_json(422, "invalid_input", "Text must be valid UTF-8")
        return _render_error(request, 422, "Text must be valid UTF-8")
    except ValueError as exc:
        if not _from_multipart_parser(exc):
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_json(500, "internal", "Internal error") if is_api(request) else \
                _render_error(request, 500, "Something went wrong on our side")
        # aiohttp's multipart reader raises ValueError on a malformed body: the client's fault.
        if is_api(request):
            return error_json(400, "bad_request", "Malformed multipart body")
        return _render_error(request, 400, "Malformed multipart body")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return error_json(500, "internal", "Internal error")
        return _render_error(request, 500, "Something went wrong on our side")


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Text that is not valid Unicode never reaches a handler (SPEC 10): a form body that is not
    UTF-8 is 422. Headers are not refused for it (a stray cookie another site set would lock a
    user out): the one kept, the User-Agent, is cleaned where it is read (`http.user_agent`).
    JSON bodies are checked where they are parsed (`http.json_body`). A multipart body without a
    usable boundary is 400 here too, before any upload handler tries to read it."""
    # Query strings and paths need no check: yarl decodes them with replacement characters.
    if is_subsonic(request):
        return await handler(request)
    if request.content_type.startswith("multipart/"):
        boundary = parse_mimetype(request.headers.get("Content-Type", "")).parameters.get("boundary", "")
        if not 0 < len(boundary) <= 70:  # RFC 2046: 1 to 70 characters
            raise BadRequest("A multipart body needs a boundary of 1 to 70 characters")
    if request.content_type == "application/x-www-form-urlencoded" and request.body_exists:
        try:
            await request.post()  # cached on the request: handlers read it again for free
        except UnicodeDecodeError:  # aiohttp decodes form bodies strictly
            raise InvalidInput("The form is not valid UTF-8") from None
    return await handler(request)


def _from_multipart_parser(exc: BaseException) -> bool:
    """Whether `exc` was raised by aiohttp's multipart reader (the innermost frame is in it)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.endswith(("aiohttp/multipart.py", "aiohttp\\multipart.py"))


def login_url(request: web.Request) -> str:
    target = request.path_qs if request.method == "GET" else "/"
    return str(request.app.router["login_page"].url_for().with_query(next=target))


@web.middleware
async def security_headers_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Security headers on every answer, and the session cookies a silent refresh produced —
    on redirects and error pages too, or the browser would keep a spent refresh token."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if not _cookie_work(request):
            _secure(exc)
            raise
        response = web.Response(status=exc.status, headers=exc.headers, body=exc.body)
    _session_cookies(request, response)
    _secure(response)
    if request.path.startswith("/static/js/") and not response.prepared:
        # Modules go by one unversioned URL each (templates/base.html): revalidated, never stale.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _cookie_work(request: web.Request) -> bool:
    return not request.get(keys.COOKIES_SET) and (
        keys.REFRESHED in request or bool(request.get(keys.CLEAR_COOKIES))
    )


def _session_cookies(request: web.Request, response: web.StreamResponse) -> None:
    if not _cookie_work(request) or response.prepared:
        return
    refreshed = request.get(keys.REFRESHED)
    if refreshed is not None:
        set_auth_cookies(response, refreshed, request.app[keys.CONFIG].secure_cookies)
    else:
        clear_auth_cookies(response)


def _secure(response: web.StreamResponse) -> None:
    if response.prepared:
        return
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Content-Security-Policy", CSP)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the caller from a bearer token or the session cookies (refreshing them silently), and
    refuse cookie-authenticated state changes that lack the CSRF token."""
    if request.path.startswith("/static/") or is_subsonic(request):
        return await handler(request)
    auth = request.app[keys.AUTH]
    header = request.headers.get("Authorization", "")
    via_cookie = False
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                request[keys.PRINCIPAL] = await auth.authenticate(token.strip())
            except Unauthenticated as exc:
                request[keys.AUTH_ERROR] = exc
        else:
            request[keys.AUTH_ERROR] = Unauthenticated("Use a Bearer token", error="invalid_request")
    else:
        access = request.cookies.get(ACCESS_COOKIE)
        refresh = request.cookies.get(REFRESH_COOKIE)
        if access:
            try:
                request[keys.PRINCIPAL] = await auth.authenticate(access)
                via_cookie = True
            except Unauthenticated as exc:
                request[keys.AUTH_ERROR] = exc
        if keys.PRINCIPAL not in request and refresh:
            try:
                refreshed = await auth.refresh(refresh)
                request[keys.REFRESHED] = refreshed
                request[keys.PRINCIPAL] = await auth.authenticate(refreshed.access_token)
                via_cookie = True
            except Unauthenticated as exc:
                request[keys.AUTH_ERROR] = exc
                request[keys.CLEAR_COOKIES] = True
    request[keys.VIA_COOKIE] = via_cookie
    if request.method in UNSAFE:
        await _check_csrf(request)
    return await handler(request)


async def _check_csrf(request: web.Request) -> None:
    """Cookie-authenticated changes carry the CSRF token: `X-CSRF-Token` from scripts, a
    `csrf_token` form field from page forms. Anonymous page forms (login, register) are checked
    against the pre-login cookie; bearer-token calls need none."""
    token = request.headers.get(CSRF_HEADER, "")
    principal = request.get(keys.PRINCIPAL)
    if principal is None and is_api(request):
        return  # no ambient credential to ride on: the handler answers 401 or works anonymously
    if principal is not None and not request.get(keys.VIA_COOKIE):
        return
    if not token and request.content_type == "multipart/form-data":
        # Uploads are streamed to disk by their handler, so the body is not read here: multipart
        # page forms carry the token in their action URL (the access log never logs queries).
        token = request.query.get("csrf_token", "")
    elif not token and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else ""
    if principal is not None:
        expected = csrf_for(request.app[keys.AUTH].signer, principal.session_id)
    else:
        expected = request.cookies.get(PRE_COOKIE, "")
    if not token or not expected or not constant_time_equal(token, expected):
        raise Forbidden("Missing or wrong CSRF token; reload the page and try again")

