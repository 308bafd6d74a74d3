"""The aiohttp side of streaming: conditional and range requests answered with `streamcore`.

The hot path does no database or thread-pool work: the song's file row comes from an in-process
LRU (`SongFiles`), the descriptor and its stat from one app-wide `streamcore.FileCache`, unpaced
bytes go with `sendfile` through `streamcore.send_range` (which yields between chunks), and every
stream asks one app-wide `PaceScheduler`, the byte-rate limiter: without an egress budget
(`SONORA_STREAM_EGRESS_MBPS=0`) it grants at once, with one it shares the budget max-min fairly
above each stream's floor (burst, then pace × bitrate; SPEC §6).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime

from aiohttp import web

from app import errors
from app.services.streaming import STALL_TIMEOUT, Grant, SongFile, StreamService
from app.web import keys
from streamcore import (
    FileCache,
    OpenFile,
    Pacer,
    PaceScheduler,
    RangeNotSatisfiable,
    StallTimeout,
    multipart_closing,
    multipart_length,
    multipart_parts,
    parse_range,
    send_range,
)

log = logging.getLogger(__name__)
CHUNK_SIZE = 256 * 1024
OPEN_FILES = 512
#: On shutdown, streams get this long to finish before they are cut (`serve` gives aiohttp's own
#: handler shutdown the same bound, which then finds them done).
DRAIN_GRACE = 10.0
#: Limited streams are sent in steps of this many seconds of their share: one wakeup and one
#: `sendfile` per step, so 2,000 listeners cost 4,000 sends a second rather than 20,000.
PACE_STEP = 0.5
#: How often the limiter recomputes the shares while streams take part: short, so that releases
#: spread over many small batches (with 100 ms ticks a seek waited 1.2 s behind them) and a new
#: stream waits at most this long for its first credit; one tick over 2,000 streams costs
#: ~0.6 ms in the Cython twin (6 % of a core at this rate), ~2.2 ms in the pure-Python one.
PACE_QUANTUM = 0.01
#: Single-range bodies up to this size (within the song's burst, when there is a budget) are read
#: with one `pread` into a new bytes object and leave with the headers in one write: cheaper than
#: `loop.sendfile`'s set-up (measured by `make bench`); larger bodies go through `send_range`.
SMALL_BODY = 64 * 1024


@dataclass(eq=False)
class Streaming:
    """Everything the stream handler shares across requests, one per application."""

    service: StreamService
    files: FileCache
    scheduler: PaceScheduler
    stall_timeout: float = STALL_TIMEOUT
    chunk_size: int = CHUNK_SIZE
    drain_grace: float = DRAIN_GRACE
    draining: bool = False
    active: set[asyncio.Task[object]] = field(default_factory=set)

    async def drain(self) -> None:
        """Let the streams in flight finish within `drain_grace`, then cut the rest."""
        self.draining = True
        if self.active:
            log.info("draining %d stream(s), up to %.0f s", len(self.active), self.drain_grace)
            await asyncio.wait(set(self.active), timeout=self.drain_grace)
        if self.active:
            log.warning("cutting %d stream(s) after the grace period", len(self.active))
            for task in list(self.active):
                task.cancel()
            await asyncio.wait(set(self.active), timeout=1.0)


async def streaming_ctx(app: web.Application) -> AsyncIterator[None]:
    """One open-file cache and one byte-rate limiter for all streams; closed after the last one."""
    service = app[keys.STREAM]
    state = Streaming(service, FileCache(OPEN_FILES), PaceScheduler(service.egress, PACE_QUANTUM))
    app[keys.STREAMING] = state

    async def drain(app: web.Application) -> None:
        await state.drain()

    # Registered here so the whole streaming lifecycle sits in this one context; on_shutdown
    # runs after the listening sockets close and before aiohttp waits for its handlers.
    app.on_shutdown.append(drain)
    yield
    state.scheduler.close()
    state.files.close()


async def grant_for(request: web.Request, song_id: int) -> Grant:
    """Who is streaming: the bearer or cookie session, else a signed URL; 401/403 otherwise."""
    principal = request.get(keys.PRINCIPAL)
    if principal is not None:
        return Grant(principal.user_id, principal.session_id)
    service = request.app[keys.STREAMING].service
    if service.is_signed(request.query):
        return await service.check_signed(song_id, request.query)
    error = request.get(keys.AUTH_ERROR)
    raise error if isinstance(error, errors.Unauthenticated) else errors.Unauthenticated()


def _open(state: Streaming, song: SongFile) -> OpenFile:
    return state.files.open(song.path)


async def open_song(state: Streaming, song_id: int) -> tuple[SongFile, OpenFile]:
    """The song's row and open file; a cached row whose file vanished is reloaded once."""
    song = await state.service.files.get(song_id)
    try:
        return song, _open(state, song)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        state.service.files.forget(song_id)
    song = await state.service.files.get(song_id)
    try:
        return song, _open(state, song)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        log.error("song %s: its file %s cannot be opened", song_id, song.path)
        raise errors.NotFound("The song's file is missing") from None


# Validators per file version (the ETag names inode, size and mtime): Last-Modified and the
# headers every answer carries, built once instead of per request.
_HEADERS: dict[tuple[str, str], tuple[dict[str, str], int]] = {}


def _base_headers(f: OpenFile, mime_type: str) -> tuple[dict[str, str], int]:
    key = (f.etag, mime_type)
    hit = _HEADERS.get(key)
    if hit is None:
        if len(_HEADERS) > 4096:
            _HEADERS.clear()
        seconds = f.mtime_ns // 1_000_000_000
        hit = ({"ETag": f.etag, "Last-Modified": formatdate(seconds, usegmt=True),
                "Accept-Ranges": "bytes", "Cache-Control": "private", "Content-Type": mime_type,
                "X-Content-Type-Options": "nosniff"}, seconds)
        _HEADERS[key] = hit
    return hit


def _http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def not_modified(headers: Mapping[str, str], etag: str, seconds: int) -> bool:
    """RFC 9110 §13.2.2: If-None-Match (weak comparison) wins over If-Modified-Since."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        return any(t == "*" or t.removeprefix("W/") == etag for t in _etags(inm))
    ims = headers.get("If-Modified-Since")
    if ims is not None:
        since = _http_date(ims)
        return since is not None and seconds <= since
    return False


def if_range_holds(value: str | None, etag: str, seconds: int) -> bool:
    """If-Range: a strong ETag match or the exact Last-Modified date; otherwise send it all."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches (strong comparison)
    return _http_date(value) == seconds


async def serve(request: web.Request, song_id: int, grant: Grant,
                extra_headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """Answer GET or HEAD for a song the caller may stream (`extra_headers` go on every
    answer with a body: a download's Content-Disposition)."""
    state = request.app[keys.STREAMING]
    song, f = await open_song(state, song_id)
    with f:
        base, seconds = _base_headers(f, song.mime_type)
        if extra_headers:
            base = {**base, **extra_headers}  # the cached dict is shared: never changed
        rh = request.headers
        if ("If-None-Match" in rh or "If-Modified-Since" in rh) and not_modified(
                rh, f.etag, seconds):
            return web.Response(status=304, headers={
                k: v for k, v in base.items() if k != "Content-Type"})
        ranges = _requested_ranges(rh, f, seconds)
        resp, parts, boundary = _framed(base, ranges, f.size, song.mime_type)
        if request.method == "HEAD":
            await resp.prepare(request)
            await resp.write_eof()
            return resp
        if state.draining:
            raise errors.Unavailable("The server is restarting; retry shortly",
                                     headers={"Retry-After": "1"})
        return await _answer(request, state, song, f, grant, resp, parts, boundary)


def _requested_ranges(rh: Mapping[str, str], f: OpenFile, seconds: int) -> list[tuple[int, int]] | None:
    """The byte ranges asked for, or None for the whole file (no Range, or an If-Range that no
    longer holds); 416 when none of them is in the file."""
    header = rh.get("Range")
    if header is None or not if_range_holds(rh.get("If-Range"), f.etag, seconds):
        return None
    try:
        return parse_range(header, f.size)
    except RangeNotSatisfiable:
        raise errors.RangeNotSatisfiable(
            "None of the requested ranges is in the file",
            headers={"Content-Range": f"bytes */{f.size}"},
        ) from None


def _framed(base: dict[str, str], ranges: list[tuple[int, int]] | None, size: int,
            mime_type: str) -> tuple[web.StreamResponse, list[tuple[bytes, int, int]], str]:
    """The response (200 whole, 206 one range, 206 multipart) with its headers and length, the
    parts to send as `(head, start, stop)`, and the multipart boundary ("" when there is none)."""
    resp = web.StreamResponse(status=200 if ranges is None else 206, headers=base)
    if ranges is None:
        resp.content_length = size
        return resp, [(b"", 0, size)], ""
    if len(ranges) == 1:
        start, stop = ranges[0]
        resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        resp.content_length = stop - start
        return resp, [(b"", start, stop)], ""
    boundary = secrets.token_hex(16)
    parts = multipart_parts(ranges, size, mime_type, boundary)
    resp.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    resp.content_length = multipart_length(ranges, size, mime_type, boundary)
    return resp, parts, boundary


async def _answer(request: web.Request, state: Streaming, song: SongFile, f: OpenFile,
                  grant: Grant, resp: web.StreamResponse, parts: list[tuple[bytes, int, int]],
                  boundary: str) -> web.StreamResponse:
    """The body, within the user's stream slots (429 when they are all taken): a small one read
    and sent with the headers, the rest through `_send`, counted among the streams to drain."""
    slots = state.service.slots
    slots.acquire(grant.user_id)
    if len(parts) == 1 and parts[0][2] - parts[0][1] <= SMALL_BODY:
        small = _small_body(state, song, f, parts[0][1], parts[0][2])
        slots.release(grant.user_id)
        if small is not None:
            resp.headers["Content-Length"] = str(len(small))
            return web.Response(status=resp.status, headers=resp.headers, body=small)
        slots.acquire(grant.user_id)
    task = asyncio.current_task()
    if task is not None:
        state.active.add(task)
    try:
        return await _send(request, state, song, f, resp, parts, boundary)
    finally:
        slots.release(grant.user_id)
        if task is not None:
            state.active.discard(task)


def _small_body(state: Streaming, song: SongFile, f: OpenFile, start: int, stop: int) -> bytes | None:
    """The bytes of a small body (a new object each time: the transport may keep it), or None
    when the limiter has a say in it (a budget, and more than the song's burst) or the file
    turned out shorter than its size."""
    if state.scheduler.limited and stop - start > state.service.pace(song)[1]:
        return None
    data = os.pread(f.fd, stop - start, start)
    return data if len(data) == stop - start else None


async def _send(request: web.Request, state: Streaming, song: SongFile, f: OpenFile,
                resp: web.StreamResponse, parts: list[tuple[bytes, int, int]],
                boundary: str) -> web.StreamResponse:
    writer = await resp.prepare(request)
    transport = request.transport
    if writer is None or transport is None:
        return resp
    loop = asyncio.get_running_loop()
    # No budget (the default): nothing to share, so no account and no per-chunk call at all.
    pacer = None
    if state.scheduler.limited:
        rate, burst = state.service.pace(song)
        pacer = Pacer(rate, burst, loop.time(), PACE_STEP)
    try:
        for head, start, stop in parts:
            if head:
                await resp.write(head)
            sent = await send_range(
                loop, transport, f.fd, start, stop - start,
                pacer=pacer, scheduler=state.scheduler if pacer is not None else None,
                chunk_size=state.chunk_size, drain=writer.drain,
                stall_timeout=state.stall_timeout,
            )
            if sent < stop - start:
                log.warning("song %s: file shorter than announced; connection closed", song.song_id)
                transport.close()
                return resp
        if boundary:
            await resp.write(multipart_closing(boundary))
    except StallTimeout:
        # aiohttp's own write_eof then meets a closed connection: a client disconnect.
        transport.close()
        return resp
    except ConnectionError:
        transport.close()
        return resp
    finally:
        if pacer is not None:
            state.scheduler.leave(pacer)  # its share goes back to the others at the next tick
    await resp.write_eof()
    return resp
