"""Parts of streamcore shared by both implementations: one copy of everything the twins agree on
that is not per-byte arithmetic.

Here: the exceptions (one class each, so ``except`` clauses work whichever implementation is
selected), the open-file cache, the multipart/byteranges framing helpers, the sender
(``send_range``: its per-chunk cost is a few awaits and a sendfile, not arithmetic) and the
event-loop side of the scheduler (:class:`SchedulerLoop`: waiting, the timer, leaving,
closing).  The twins keep only the hot parts: ``parse_range``, ``Pacer``, ``allocate`` and the
scheduler's state with its ``grant``/``tick``.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

__all__ = [
    "FileCache",
    "GRACE",
    "HEADROOM",
    "IDLE_DROP",
    "MAX_DT",
    "NUMBER_LIMIT",
    "OpenFile",
    "RangeNotSatisfiable",
    "SchedulerLoop",
    "StallTimeout",
    "multipart_closing",
    "multipart_length",
    "multipart_parts",
    "send_range",
]

#: Every number in a Range header is clamped to this value (2**62), far above any real file
#: size, so both implementations agree and the compiled one never overflows a C integer.
NUMBER_LIMIT = 1 << 62


class RangeNotSatisfiable(Exception):
    """A syntactically valid Range header of which no range overlaps the file (answer 416)."""


class StallTimeout(TimeoutError):
    """The peer accepted no bytes for ``stall_timeout`` seconds; close the connection."""


class OpenFile:
    """One open, read-only regular file with the metadata it was opened with.

    Reference counted: :meth:`FileCache.open` hands it out acquired once; call
    :meth:`release` (or use it as a context manager) when the response no longer needs the
    descriptor.  The descriptor is closed only when it is both out of the cache and released
    by every user, so an eviction never closes an fd under a response that is sending it.
    """

    __slots__ = ("path", "fd", "size", "mtime_ns", "inode", "etag", "_refs", "_cached")

    def __init__(self, path: str, fd: int, st: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.size: int = st.st_size
        self.mtime_ns: int = st.st_mtime_ns
        self.inode: int = st.st_ino
        self.etag = f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
        self._refs = 0
        self._cached = True

    @property
    def mtime(self) -> float:
        """Modification time in seconds since the epoch."""
        return self.mtime_ns / 1e9

    @property
    def refs(self) -> int:
        """How many users currently hold this file."""
        return self._refs

    @property
    def closed(self) -> bool:
        """True once the descriptor has been closed."""
        return self.fd < 0

    def _key(self) -> tuple[int, int, int]:
        return (self.inode, self.size, self.mtime_ns)

    def acquire(self) -> OpenFile:
        """Take one more reference (the file stays open until it is released)."""
        if self.fd < 0:
            raise ValueError("file is closed")
        self._refs += 1
        return self

    def release(self) -> None:
        """Drop one reference; closes the fd if it was the last and the entry left the cache."""
        if self._refs <= 0:
            raise RuntimeError("OpenFile released more often than acquired")
        self._refs -= 1
        self._maybe_close()

    def _uncache(self) -> None:
        self._cached = False
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self._refs == 0 and not self._cached and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<OpenFile {self.path!r} fd={self.fd} size={self.size} refs={self._refs}>"


class FileCache:
    """A bounded LRU cache of open files, keyed by path, for the event-loop thread.

    Each :meth:`open` re-stats the path (one cheap syscall) and reopens when the inode, size
    or mtime changed, so a replaced or rewritten file is never served stale; a deleted file
    raises :class:`FileNotFoundError` and its entry is dropped.  Not thread safe: use it from
    one event loop.
    """

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[str, OpenFile] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def open(self, path: str) -> OpenFile:
        """Return the open file for ``path``, acquired once (release it when done)."""
        entry = self._entries.get(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if entry is not None:
                self.invalidate(path)
            raise
        if entry is not None:
            if entry._key() == (st.st_ino, st.st_size, st.st_mtime_ns):
                self._entries.move_to_end(path)
                return entry.acquire()
            self.invalidate(path)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # fstat, not the stat above: the path may have been replaced in between, and the
            # metadata must describe the bytes this descriptor reads.
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(path)
                raise OSError(f"not a regular file: {path!r}")
        except BaseException:
            os.close(fd)
            raise
        entry = OpenFile(path, fd, st)
        self._entries[path] = entry
        while len(self._entries) > self.capacity:
            _, old = self._entries.popitem(last=False)
            old._uncache()
        return entry.acquire()

    def invalidate(self, path: str) -> None:
        """Forget ``path``; its fd closes as soon as no response uses it."""
        entry = self._entries.pop(path, None)
        if entry is not None:
            entry._uncache()

    def close(self) -> None:
        """Drop every entry; fds still in use close when their last user releases them."""
        while self._entries:
            _, entry = self._entries.popitem()
            entry._uncache()


_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,./:=?-]{0,69}[0-9A-Za-z'()+_,./:=?-]")
_BAD_HEADER_RE = re.compile(r"[\x00-\x1f\x7f]")


def _check_part_args(content_type: str, boundary: str) -> None:
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise ValueError(f"invalid multipart boundary: {boundary!r}")
    if _BAD_HEADER_RE.search(content_type):
        raise ValueError("control character in content type")


def multipart_parts(
    ranges: Iterable[tuple[int, int]], size: int, content_type: str, boundary: str
) -> list[tuple[bytes, int, int]]:
    """Per-part ``(header bytes, start, stop)`` of a ``multipart/byteranges`` body.

    Send each header, then bytes ``[start, stop)`` of the file, and finally
    :func:`multipart_closing`.  Every header after the first starts with the CRLF that ends
    the previous part's body.
    """
    _check_part_args(content_type, boundary)
    parts = []
    for i, (start, stop) in enumerate(ranges):
        if not 0 <= start < stop <= size:
            raise ValueError(f"range {start}-{stop} outside a file of {size} bytes")
        head = (
            f"{'' if i == 0 else chr(13) + chr(10)}--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n"
        )
        parts.append((head.encode("latin-1"), start, stop))
    return parts


def multipart_closing(boundary: str) -> bytes:
    """The closing delimiter that ends a ``multipart/byteranges`` body."""
    return f"\r\n--{boundary}--\r\n".encode("latin-1")


def multipart_length(ranges: Iterable[tuple[int, int]], size: int, content_type: str, boundary: str) -> int:
    """The Content-Length of the ``multipart/byteranges`` body for ``ranges``."""
    parts = multipart_parts(ranges, size, content_type, boundary)
    body = sum(len(head) + stop - start for head, start, stop in parts)
    return body + len(multipart_closing(boundary))


# The scheduler's constants, one copy for both twins (see PaceScheduler's docstring).
#: A stream not waiting at a tick is taken to want what it took in it, and a quarter more.
HEADROOM = 1.25
#: A stream released from the queue counts as wanting more until it asks again, for this long:
#: a busy loop may not have run it yet (a slow or stalled reader is noticed after it).
GRACE = 0.5
#: A stream that neither waited nor sent for this long leaves the allocation.
IDLE_DROP = 2.0
#: The longest time one tick credits.
MAX_DT = 1.0


class SchedulerLoop:
    """The event-loop side of ``PaceScheduler``, shared by both twins.

    The twin's class supplies the state (set in its ``__init__``) and the arithmetic,
    ``grant(pacer, nbytes, now) -> bool`` and ``tick(now) -> list[pacer]``; this mixin adds
    waiting for a tick, the timer that ticks every ``quantum`` while streams take part, leaving
    and closing.  A pacer is the twin's ``Pacer`` (``share``, ``balance`` and ``allowed``).
    """

    if not TYPE_CHECKING:  # no instance dict of its own (mypy would take the state below as slots)
        __slots__ = ()

    HEADROOM = HEADROOM
    GRACE = GRACE
    IDLE_DROP = IDLE_DROP
    MAX_DT = MAX_DT

    if TYPE_CHECKING:  # provided by the twin's class
        egress: float
        quantum: float
        _spare: float
        _debt: float
        _streams: dict[Any, int]
        _futures: dict[Any, asyncio.Future[None]]
        _waiting: int
        _loop: asyncio.AbstractEventLoop | None
        _handle: asyncio.TimerHandle | None
        _last: float
        _closed: bool

        def grant(self, pacer: Any, nbytes: int, now: float) -> bool: ...

        def tick(self, now: float) -> list[Any]: ...

    def __len__(self) -> int:
        """Streams waiting for their share."""
        return self._waiting

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    @property
    def limited(self) -> bool:
        """Whether there is an egress budget at all."""
        return self.egress > 0.0

    @property
    def streams(self) -> int:
        """Streams taking part in the allocation."""
        return len(self._streams)

    def pacers(self) -> list[Any]:
        """The pacers taking part in the allocation, in joining order."""
        return list(self._streams)

    def queued(self, pacer: Any) -> int:
        """Bytes ``pacer`` waits for (0 when it does not wait)."""
        return self._streams.get(pacer, 0)

    def allocated(self) -> float:
        """The sum of the shares given at the last tick (bytes/s)."""
        total = 0.0
        for p in self._streams:
            total += p.share
        return total

    def leave(self, pacer: Any) -> None:
        """Take ``pacer`` out of the allocation (its stream ended); a pending wait is cancelled."""
        queued = self._streams.pop(pacer, None)
        if queued:
            self._waiting -= 1
        if queued is not None and pacer.balance > 0.0:
            self._spare += pacer.balance
            pacer.balance = 0.0
        elif queued is not None and pacer.balance < 0.0:
            # What it took and did not pay for is owed by the next streams to join (a step each),
            # at most a second of the budget, so a crowd leaving at once costs no newcomer long.
            debt = self._debt - pacer.balance
            self._debt = debt if debt < self.egress else self.egress
            pacer.balance = 0.0
        fut = self._futures.pop(pacer, None)
        if fut is not None and not fut.done():
            fut.cancel()

    async def wait(self, pacer: Any, nbytes: int) -> int:
        """Return once ``pacer`` may send more: the bytes it may send now, ``nbytes`` or (after
        waiting, when its share fell meanwhile) fewer; at once when in credit or unlimited."""
        if self._closed:
            raise RuntimeError("PaceScheduler is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        if self.grant(pacer, nbytes, now):
            return int(pacer.allowed)  # nbytes, or one step of its share when it just joined
        fut: asyncio.Future[None] = loop.create_future()
        self._futures[pacer] = fut
        if self._handle is None:
            # The timer was stopped (no stream took part): tick now, on at most one quantum.
            if self._last < now - self.quantum:
                self._last = now - self.quantum
            self._wake()
        try:
            await fut
        except asyncio.CancelledError:
            if self._streams.get(pacer):
                self._streams[pacer] = 0
                self._waiting -= 1
            raise
        finally:
            if self._futures.get(pacer) is fut:
                del self._futures[pacer]
        return pacer.allowed

    def _wake(self) -> None:
        self._handle = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for p in self.tick(now):
            fut = self._futures.pop(p, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        if self._streams:  # on while anyone takes part, so every tick spans one quantum
            self._handle = loop.call_at(now + self.quantum, self._wake)

    def close(self) -> None:
        """Cancel every pending wait (they raise CancelledError) and refuse new ones."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        futures, self._futures = self._futures, {}
        self._streams.clear()
        self._waiting = 0
        for fut in futures.values():
            if not fut.done():
                fut.cancel()


class _Account(Protocol):
    """What :func:`send_range` uses of a twin's ``Pacer``."""

    rate: float

    def chunk(self, limit: int) -> int: ...

    def delay(self, nbytes: int, now: float) -> float: ...

    def consume(self, nbytes: int) -> None: ...


class _Grants(Protocol):
    """What :func:`send_range` uses of a twin's ``PaceScheduler``."""

    async def wait(self, pacer: Any, nbytes: int) -> int: ...


async def _drain(
    transport: asyncio.WriteTransport,
    drain: Callable[[], Awaitable[None]] | None,
    stall_timeout: float | None,
) -> None:
    """Wait until the transport's buffer is under its high-water mark, watching for stalls."""
    high = transport.get_write_buffer_limits()[1]
    size = transport.get_write_buffer_size()
    while size > high:
        if transport.is_closing():
            raise ConnectionResetError("connection lost")
        try:
            async with asyncio.timeout(stall_timeout) as cm:
                if drain is not None:
                    await drain()
                else:
                    while transport.get_write_buffer_size() > high:
                        if transport.is_closing():
                            raise ConnectionResetError("connection lost")
                        await asyncio.sleep(0.005)
        except TimeoutError:
            if not cm.expired():
                raise
            now_size = transport.get_write_buffer_size()
            if now_size >= size:
                raise StallTimeout(f"no progress for {stall_timeout} s") from None
            size = now_size
            continue
        size = transport.get_write_buffer_size()
        if drain is not None:
            return  # the protocol resumed writing: that is the transport's own verdict


async def _native(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.WriteTransport,
    fobj: Any,
    offset: int,
    n: int,
    stall_timeout: float | None,
) -> int:
    if stall_timeout is None:
        return await loop.sendfile(transport, fobj, offset, n, fallback=False)
    try:
        async with asyncio.timeout(stall_timeout) as cm:
            return await loop.sendfile(transport, fobj, offset, n, fallback=False)
    except TimeoutError:
        if cm.expired():
            raise StallTimeout(f"chunk not sent within {stall_timeout} s") from None
        raise


async def send_range(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.WriteTransport,
    fd: int,
    offset: int,
    count: int,
    *,
    pacer: _Account | None = None,
    scheduler: _Grants | None = None,
    chunk_size: int = 256 * 1024,
    drain: Callable[[], Awaitable[None]] | None = None,
    stall_timeout: float | None = None,
) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` on ``transport``; return bytes sent.

    Unpaced bytes go through ``loop.sendfile`` (zero copy) in chunks of at most
    ``chunk_size``, yielding to the loop between chunks; with a ``pacer`` each chunk first
    waits for its grant from ``scheduler`` (or sleeps on the pacer's own line, without one).
    Transports without sendfile (TLS, some loops) get ``os.pread`` into a fresh bytes object
    per write.  Returns less than ``count`` only when the file ended early; the caller must
    then close the connection.  One copy for both twins: it takes either twin's ``Pacer`` and
    ``PaceScheduler`` (not one of each).
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if count <= 0:
        return 0
    # With a scheduler every chunk asks it (an unlimited one grants at once); without one, a
    # pacer with a rate keeps the fixed burst-then-pace line.
    paced = pacer is not None and (scheduler is not None or pacer.rate > 0.0)
    # A non-owning file object: sendfile passes explicit offsets, so sharing the fd (and its
    # file position) with other responses is safe.
    fobj = io.FileIO(fd, "rb", closefd=False)
    try:
        return await _send_chunks(
            loop, transport, fd, fobj, offset, count, paced=paced, pacer=pacer,
            scheduler=scheduler, chunk_size=chunk_size, drain=drain, stall_timeout=stall_timeout,
        )
    finally:
        fobj.close()


async def _send_chunks(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.WriteTransport,
    fd: int,
    fobj: io.FileIO,
    offset: int,
    count: int,
    *,
    paced: bool,
    pacer: _Account | None,
    scheduler: _Grants | None,
    chunk_size: int,
    drain: Callable[[], Awaitable[None]] | None,
    stall_timeout: float | None,
) -> int:
    """:func:`send_range`'s loop, one chunk a turn (kept in one piece: it is the hot path)."""
    native = True
    sent = 0
    while sent < count:
        n = count - sent
        if n > chunk_size:
            n = chunk_size
        if paced:
            assert pacer is not None
            n = min(n, pacer.chunk(chunk_size))
            if scheduler is not None:
                n = await scheduler.wait(pacer, n)
            else:
                delay = pacer.delay(n, loop.time())
                if delay > 0.0:
                    await asyncio.sleep(delay)
        if transport.is_closing():
            raise ConnectionResetError("connection lost")
        await _drain(transport, drain, stall_timeout)
        done = -1
        if native:
            try:
                done = await _native(loop, transport, fobj, offset + sent, n, stall_timeout)
            except (RuntimeError, NotImplementedError) as exc:
                # SendfileNotAvailableError (a RuntimeError) and "not supported for
                # transport" (TLS, uvloop...) are raised before any byte is sent.
                if transport.is_closing():
                    raise ConnectionResetError("connection lost") from exc
                native = False
        if not native:
            data = os.pread(fd, n, offset + sent)  # a NEW object: the transport may keep it
            done = len(data)
            if done:
                transport.write(data)
        if pacer is not None:
            pacer.consume(done)
        sent += done
        if done < n:
            break  # the file is shorter than announced
        if sent < count:
            # Writes to a fast socket never suspend: yield so other requests run.
            await asyncio.sleep(0)
    return sent
