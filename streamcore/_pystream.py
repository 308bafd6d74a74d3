"""Pure-Python reference implementation of streamcore (the compiled twin mirrors it)."""

from __future__ import annotations

import asyncio
import heapq
import io
import os
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import (
    NUMBER_LIMIT,
    FileCache,
    OpenFile,
    RangeNotSatisfiable,
    StallTimeout,
    multipart_closing,
    multipart_length,
    multipart_parts,
)

__all__ = [
    "FileCache",
    "OpenFile",
    "PaceScheduler",
    "Pacer",
    "RangeNotSatisfiable",
    "StallTimeout",
    "multipart_closing",
    "multipart_length",
    "multipart_parts",
    "parse_range",
    "send_range",
]

_OWS = " \t"
_DIGITS = frozenset("0123456789")


def _number(text: str) -> int | None:
    """ASCII digits to an int clamped to NUMBER_LIMIT; None when not 1+ ASCII digits."""
    if not text or not _DIGITS.issuperset(text):
        return None
    text = text.lstrip("0")
    if len(text) > 19:  # also keeps int() away from its max-digits guard
        return NUMBER_LIMIT
    return min(int(text or "0"), NUMBER_LIMIT)


def parse_range(header: str | None, size: int, max_ranges: int = 16) -> list[tuple[int, int]] | None:
    """Parse an RFC 9110 ``Range`` header against a file of ``size`` bytes.

    Returns sorted, merged, half-open ``(start, stop)`` ranges, or None when the whole file
    should be sent with 200 (no header, malformed, another unit, too many ranges or a
    pathological set).  Raises :class:`RangeNotSatisfiable` when the header is valid but no
    range overlaps the file.
    """
    if not 0 <= size <= NUMBER_LIMIT:
        raise ValueError("size out of range")
    if not header:
        return None
    unit, sep, rest = header.partition("=")
    if not sep or unit.strip(_OWS).lower() != "bytes" or not unit.isascii():
        return None
    count = 0
    wanted: list[tuple[int, int]] = []
    for element in rest.split(","):
        element = element.strip(_OWS)
        if not element:
            continue  # RFC 9110 §5.6.1: empty list elements are tolerated
        count += 1
        if count > max_ranges:
            return None
        first, dash, last = element.partition("-")
        if not dash:
            return None
        if not first:
            suffix = _number(last)
            if suffix is None:
                return None
            if suffix > 0 and size > 0:
                wanted.append((max(0, size - suffix), size))
            continue
        start = _number(first)
        if start is None:
            return None
        if last:
            end = _number(last)
            if end is None or end < start:
                return None
            stop = min(end + 1, size)
        else:
            stop = size
        if start < size:
            wanted.append((start, stop))
    if count == 0:
        return None
    if not wanted:
        raise RangeNotSatisfiable(f"bytes */{size}")
    # Many small overlapping ranges cost far more than the whole file: answer 200 instead.
    if sum(stop - start for start, stop in wanted) > 2 * size:
        return None
    wanted.sort()
    merged = [wanted[0]]
    for start, stop in wanted[1:]:
        last_start, last_stop = merged[-1]
        if start <= last_stop:  # overlapping or adjacent
            if stop > last_stop:
                merged[-1] = (last_start, stop)
        else:
            merged.append((start, stop))
    return merged


class Pacer:
    """Burst-then-pace byte budget for one stream, on an injected clock.

    Bytes sent by time ``t`` never exceed ``burst + rate * (t - t0)``; a rate of 0 or less
    means unpaced.  Use ``loop.time()`` for ``now`` when pacing with :class:`PaceScheduler`.
    """

    __slots__ = ("rate", "burst", "t0", "_sent", "granularity")

    def __init__(self, rate: float, burst: int, now: float, granularity: float = 0.1) -> None:
        self.rate = float(rate)
        self.burst = int(burst)
        self.t0 = float(now)
        self.granularity = float(granularity)
        self._sent = 0

    @property
    def sent(self) -> int:
        """Bytes recorded by :meth:`consume` so far."""
        return self._sent

    @property
    def paced(self) -> bool:
        """Whether this pacer limits anything at all."""
        return self.rate > 0.0

    def delay(self, nbytes: int, now: float) -> float:
        """Seconds to wait at ``now`` before ``nbytes`` more may be sent (0.0 if at once)."""
        if self.rate <= 0.0:
            return 0.0
        excess = self._sent + nbytes - self.burst
        if excess <= 0:
            return 0.0
        wait = self.t0 + excess / self.rate - now
        return wait if wait > 0.0 else 0.0

    def consume(self, nbytes: int) -> None:
        """Record ``nbytes`` as sent."""
        self._sent += nbytes

    def chunk(self, limit: int) -> int:
        """A good next chunk size (at most ``limit``): the rest of the burst, then rate×granularity."""
        if self.rate <= 0.0:
            return limit
        left = self.burst - self._sent
        if left > 0:
            return min(limit, left)
        step = int(self.rate * self.granularity)
        return min(limit, max(step, 1024))


class PaceScheduler:
    """Wakes paced streams from one heap and one timer, whatever the number of streams.

    Every due waiter is released in one batch per wakeup; cancelled waits are skipped.
    """

    # Waiters due within this many seconds share a wakeup (tiny next to any pacing quantum).
    SLACK = 0.001

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    async def wait(self, pacer: Pacer, nbytes: int) -> None:
        """Return once ``pacer`` allows ``nbytes`` more (at once when already allowed)."""
        if self._closed:
            raise RuntimeError("PaceScheduler is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        delay = pacer.delay(nbytes, now)
        if delay <= 0.0:
            return
        deadline = now + delay
        fut: asyncio.Future[None] = loop.create_future()
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, fut))
        if self._handle is None or deadline < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = deadline
            self._handle = loop.call_at(deadline, self._wake)
        await fut

    def _wake(self) -> None:
        self._handle = None
        loop = self._loop
        assert loop is not None
        heap = self._heap
        due = loop.time() + self.SLACK
        while heap and heap[0][0] <= due:
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(None)
        if heap:
            self._when = heap[0][0]
            self._handle = loop.call_at(self._when, self._wake)

    def close(self) -> None:
        """Cancel every pending wait (they raise CancelledError) and refuse new ones."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        heap, self._heap = self._heap, []
        for _, _, fut in heap:
            if not fut.done():
                fut.cancel()


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
    pacer: Pacer | None = None,
    scheduler: PaceScheduler | None = None,
    chunk_size: int = 256 * 1024,
    drain: Callable[[], Awaitable[None]] | None = None,
    stall_timeout: float | None = None,
) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` on ``transport``; return bytes sent.

    Unpaced bytes go through ``loop.sendfile`` (zero copy) in chunks of at most
    ``chunk_size``, yielding to the loop between chunks; paced ones wait on ``scheduler``
    (or sleep, without one) before each chunk.  Transports without sendfile (TLS, some
    loops) get ``os.pread`` into a fresh bytes object per write.  Returns less than
    ``count`` only when the file ended early; the caller must then close the connection.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if count <= 0:
        return 0
    paced = pacer is not None and pacer.rate > 0.0
    native = True
    sent = 0
    # A non-owning file object: sendfile passes explicit offsets, so sharing the fd (and its
    # file position) with other responses is safe.
    fobj = io.FileIO(fd, "rb", closefd=False)
    try:
        while sent < count:
            n = count - sent
            if n > chunk_size:
                n = chunk_size
            if paced:
                assert pacer is not None
                n = min(n, pacer.chunk(chunk_size))
                if scheduler is not None:
                    await scheduler.wait(pacer, n)
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
    finally:
        fobj.close()
    return sent
