"""The HTTP connection handler: slow clients cut off, and parse errors in the one error shape.

aiohttp's `RequestHandler` parses requests and runs the app; this subclass adds what SPEC §10 asks
of the connection itself, below the middlewares (which only see requests that parsed):

- a request head not complete within `request_head_timeout` seconds closes the connection
  (from the connection's start, then from the first byte of each following head), so clients
  trickling a head one byte at a time cannot hold connections open;
- once `request_body_grace_seconds` have passed, a request body must keep arriving at
  `request_body_min_rate` bytes a second at least, measured over windows of the grace period's
  length; time during which the server itself stopped reading (the handler is busy and the buffer
  is full) does not count against the client;
- a request aiohttp cannot parse (a request line over 8,190 bytes, a header block over its
  limits, a malformed header) is answered in the error shape when it was for `/api`, and logged as
  a bad request rather than with a traceback.

`install(app, ...)` makes every runner of the app (the server, the tests' `TestServer`, the
bench) use this handler, by wrapping the Application's handler factory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger("sonora.http")
_TARGET = re.compile(rb"\s*[A-Za-z]{1,16} +(\S+)")
_CODES = {400: "bad_request", 413: "too_large", 431: "bad_request"}


class HardenedRequestHandler(RequestHandler):
    """aiohttp's connection handler with head and body deadlines (see the module docstring)."""

    def __init__(self, manager: web.Server, *, head_timeout: float, body_grace: float,
                 body_min_rate: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._body_grace = body_grace
        self._body_min_rate = body_min_rate
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: Any = None  # the payload of the request whose body is being received
        self._head_start = b""  # the first bytes of the current head (its method and target)
        self._parsed_start = b""  # … and of the last head parsed (or refused by the parser)
        self._window_start = 0.0
        self._window_bytes = 0

    # -- connection events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_body = self._body is not None and not self._body.is_eof()
        if in_body:
            self._window_bytes += len(data)
        elif data:
            if self._head_timer is None:
                self._start_head_timer()
            if not self._head_start:
                self._head_start = bytes(data[:96])
        before = self._request_count
        super().data_received(data)
        if self._request_count > before:  # a head was parsed: its deadline no longer applies
            self._parsed_start, self._head_start = self._head_start, b""
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if self._messages:
                payload = self._messages[-1][1]
                if not payload.is_eof():
                    self._watch_body(payload)

    # -- deadlines

    def _start_head_timer(self) -> None:
        if self._head_timeout > 0 and self._head_timer is None:
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        log.info("closing a connection from %s: request head not complete within %.3g s",
                 self._peer(), self._head_timeout)
        self._cut()

    def _watch_body(self, payload: Any) -> None:
        self._body = payload  # its bytes are body, not the start of the next head
        self._window_start = self._loop.time()
        self._window_bytes = 0
        if self._body_min_rate <= 0 or self._body_grace <= 0:
            return
        if self._body_timer is None:
            self._body_timer = self._loop.call_later(self._tick(), self._check_body)

    def _tick(self) -> float:
        return max(0.05, min(1.0, self._body_grace / 4))

    def _check_body(self) -> None:
        self._body_timer = None
        if self._body is None or self._body.is_eof() or self.transport is None:
            self._body = None
            return
        now = self._loop.time()
        if self._reading_paused or self._buffer_paused:
            # The server stopped reading (the handler has not caught up): not the client's doing.
            self._window_start, self._window_bytes = now, 0
        elif now - self._window_start >= self._body_grace:
            rate = self._window_bytes / (now - self._window_start)
            if rate < self._body_min_rate:
                log.info("closing a connection from %s: request body at %.0f B/s, below %.0f B/s",
                         self._peer(), rate, self._body_min_rate)
                self._cut()
                return
            self._window_start, self._window_bytes = now, 0
        self._body_timer = self._loop.call_later(self._tick(), self._check_body)

    def _stop_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        self._body = None

    def _cut(self) -> None:
        self._stop_timers()
        if self.transport is not None:
            self.transport.abort()  # no lingering: the client is not reading anyway

    def _peer(self) -> str:
        if self.transport is None:
            return "-"
        peer = self.transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else "-"

    # -- requests aiohttp could not parse

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or status >= 500:
            return super().handle_error(request, status, exc, message)
        # Neither the log nor the answer repeats what was sent: a header may carry a credential.
        reason = _reason(exc)
        log.info("bad request from %s: %s", request.remote, reason)
        match = _TARGET.match(self._parsed_start)
        target = match.group(1) if match else b""
        if target == b"/api" or target.startswith((b"/api/", b"/api?")):
            body = {"error": {"code": _CODES.get(status, "bad_request"),
                              "message": f"The request could not be read: {reason}"}}
            response = web.Response(status=status, body=json.dumps(body).encode(),
                                    content_type="application/json",
                                    headers={"X-Content-Type-Options": "nosniff"})
        else:
            response = web.Response(status=status, text=f"{status} Bad Request",
                                    content_type="text/plain")
        response.force_close()
        return response


def _reason(exc: HttpProcessingError) -> str:
    if isinstance(exc, LineTooLong):
        return "a request line or header field is longer than the server accepts"
    if "headers" in (exc.message or "").lower() and "too many" in (exc.message or "").lower():
        return "too many header fields"
    return "malformed request line or headers"


class HardenedServer(web.Server):
    """aiohttp's connection factory, making `HardenedRequestHandler`s."""

    def __call__(self) -> RequestHandler:
        return HardenedRequestHandler(self, loop=self._loop, **self._kwargs)


def install(app: web.Application, *, head_timeout: float, body_grace: float,
            body_min_rate: float) -> None:
    """Every runner of `app` serves its connections with `HardenedRequestHandler`."""
    original: Callable[..., web.Server] = app._make_handler  # noqa: SLF001

    def make_handler(*, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> web.Server:
        # aiohttp's own access log writes the request line, query string included, where /rest
        # carries credentials (p, t, s, apiKey) and signed URLs their signatures: the app keeps
        # its own access log without them (middlewares.access_log_middleware), for every runner.
        kwargs["access_log"] = None
        server = original(loop=loop, **kwargs)
        return HardenedServer(
            server.request_handler, request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation, loop=server._loop,  # noqa: SLF001
            **server._kwargs,  # noqa: SLF001
            head_timeout=head_timeout, body_grace=body_grace, body_min_rate=body_min_rate,
        )

    # Application forbids new attributes only in aiohttp's debug mode; this is its own factory.
    object.__setattr__(app, "_make_handler", make_handler)
