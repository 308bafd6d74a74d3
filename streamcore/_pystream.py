"""Pure-Python reference implementation of streamcore (the compiled twin mirrors it)."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Awaitable, Callable, Sequence
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
    "allocate",
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


INF = float("inf")


class Pacer:
    """One stream's byte account: its floor (burst, then ``rate``), its share and its balance.

    Under a :class:`PaceScheduler` the pacer is the stream's seat at the allocator: its floor is
    full speed while fewer than ``burst`` bytes went (``sent``), then ``rate`` bytes/s (0 or less:
    no floor beyond the fair share); ``share`` is the rate the allocator last gave it (``inf``
    when unlimited, 0.0 before it joined) and ``balance`` the bytes it may still send (negative:
    owed).  Without a scheduler it is the fixed burst-then-pace line of the reference: bytes sent
    by time ``t`` never exceed ``burst + rate * (t - t0)`` (:meth:`delay`); rate <= 0 is unpaced.
    """

    __slots__ = ("rate", "burst", "t0", "_sent", "granularity", "share", "balance", "waits",
                 "granted", "allowed", "_used", "_idle", "_queued", "_released")

    def __init__(self, rate: float, burst: int, now: float, granularity: float = 0.1) -> None:
        self.rate = float(rate)
        self.burst = int(burst)
        self.t0 = float(now)
        self.granularity = float(granularity)
        self._sent = 0
        self.share = 0.0
        self.balance = 0.0
        self.waits = 0
        self.granted = 0
        self.allowed = 0
        self._used = 0.0
        self._idle = 0.0
        self._queued = False
        self._released = -INF

    @property
    def sent(self) -> int:
        """Bytes recorded by :meth:`consume` so far."""
        return self._sent

    @property
    def paced(self) -> bool:
        """Whether this pacer limits anything at all on its own (without a scheduler)."""
        return self.rate > 0.0

    @property
    def floor(self) -> float:
        """The rate this stream is owed before any sharing: inf during the burst, then rate."""
        if self._sent < self.burst:
            return INF
        return self.rate if self.rate > 0.0 else 0.0

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
        """A good next chunk size (at most ``limit``): the rest of the burst, then
        ``granularity`` seconds of the share (or of the rate, before a share is known)."""
        left = self.burst - self._sent
        if left > 0:
            if 0.0 < self.share < INF:  # a shared budget: the burst too goes in steps of the share
                limit = min(limit, max(int(self.share * self.granularity), 1024))
            return min(limit, left)
        basis = self.share if self.share > 0.0 else self.rate
        if basis <= 0.0 or basis == INF:
            return limit
        step = basis * self.granularity
        if step >= limit:
            return limit
        return min(limit, max(int(step), 1024))


def allocate(budget: float, floors: Sequence[float], demands: Sequence[float]) -> list[float]:
    """Max-min fair shares of ``budget`` (bytes/s) with per-stream floors (water-filling).

    Each stream first gets ``min(floor, demand)`` (floors may be ``inf``: full speed); when those
    fit in the budget the rest is water-filled: ``share = min(demand, max(floor, level))`` with
    the one level that spends the budget (or every demand, when they all fit).  When the floors
    alone do not fit, the budget is water-filled under them: ``share = min(floor, demand,
    level)``.  Either way the shares never add up to more than ``budget`` and no stream can get
    more without taking from one that has no more than it, unless that one is at its floor.
    """
    if not budget > 0.0 or budget == INF:
        raise ValueError("budget must be a positive finite number of bytes per second")
    n = len(floors)
    if len(demands) != n:
        raise ValueError("floors and demands differ in length")
    lo = [0.0] * n
    hi = [0.0] * n
    base = 0.0
    for i in range(n):
        d = float(demands[i])
        f = float(floors[i])
        d = d if d > 0.0 else 0.0  # also turns nan into 0
        f = f if f > 0.0 else 0.0
        lo[i] = f if f < d else d
        hi[i] = d
        base += lo[i]
    if base >= budget:  # the floors alone take it all: share the budget under them
        for i in range(n):
            hi[i] = lo[i]
            lo[i] = 0.0
        base = 0.0
    top = 0.0
    for i in range(n):
        top += hi[i]
    if top <= budget:
        return hi
    level = _level(budget, base, lo, hi)
    out = [0.0] * n
    for i in range(n):
        x = level if level > lo[i] else lo[i]
        out[i] = x if x < hi[i] else hi[i]
    return out


def _level(budget: float, base: float, lo: list[float], hi: list[float]) -> float:
    """The L at which sum(clamp(L, lo_i, hi_i)) reaches ``budget`` (sum(lo) = base < budget <
    sum(hi)): a sweep over the sorted breakpoints, where the slope is the count of streams with
    lo_i <= L < hi_i."""
    los = sorted(lo)
    his = sorted(hi)
    n = len(los)
    i = j = 0
    slope = 0
    level = los[0]
    total = base
    while True:
        while i < n and los[i] <= level:
            slope += 1
            i += 1
        while j < n and his[j] <= level:
            slope -= 1
            j += 1
        nxt = his[j] if j < n else INF
        if i < n and los[i] < nxt:
            nxt = los[i]
        if nxt == INF:
            return level + (budget - total) / slope if slope > 0 else level
        if slope > 0:
            step = total + slope * (nxt - level)
            if step >= budget:
                return level + (budget - total) / slope
            total = step
        level = nxt


class PaceScheduler:
    """The byte-rate limiter of every stream: one global egress budget shared max-min fairly.

    ``egress`` is bytes per second for all streams together; 0 (or less) means no limit, and then
    :meth:`wait` never sleeps.  Otherwise every ``quantum`` seconds (while streams take part) one
    tick recomputes every stream's share with :func:`allocate` — demand ``inf`` for a stream that
    waits, else what it took in the last tick plus a quarter — credits each balance with
    ``share × dt`` and releases the waiters whose balance is back to zero or more.  A stream
    whose balance is not negative sends at once and pays afterwards (so a new stream's first
    chunk never waits for a tick); one that neither waited nor sent for ``IDLE_DROP`` seconds
    leaves the allocation until it asks again.  Credit that a stream leaving (:meth:`leave`) did
    not use goes to the next stream that asks before the next tick, so a client that downloads
    one file after another is not held back by the tick.  A debt is owed in time: when a share
    falls, what a stream owes falls with it (the bytes this forgives are counted in
    ``forgiven``), and a stream released from the queue gets at most one step (``granularity``
    seconds) of its share now, whatever it asked for while its share was larger.
    """

    # A stream not waiting at a tick is taken to want what it took in it, and a quarter more.
    HEADROOM = 1.25
    # A stream released from the queue counts as wanting more until it asks again, for this
    # long: a busy loop may not have run it yet (a slow or stalled reader is noticed after it).
    GRACE = 0.5
    IDLE_DROP = 2.0
    MAX_DT = 1.0

    def __init__(self, egress: float = 0.0, quantum: float = 0.1) -> None:
        if not quantum > 0.0:
            raise ValueError("quantum must be positive")
        self.egress = float(egress) if egress > 0.0 else 0.0
        self.quantum = float(quantum)
        self.granted = 0
        self.waits = 0
        self.ticks = 0
        self.forgiven = 0.0
        self._spare = 0.0  # credit given at the last tick to streams that left without using it
        self._streams: dict[Pacer, int] = {}  # pacer -> bytes it waits for (0: not waiting)
        self._futures: dict[Pacer, asyncio.Future[None]] = {}
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._last = -INF
        self._closed = False

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

    def pacers(self) -> list[Pacer]:
        """The pacers taking part in the allocation, in joining order."""
        return list(self._streams)

    def queued(self, pacer: Pacer) -> int:
        """Bytes ``pacer`` waits for (0 when it does not wait)."""
        return self._streams.get(pacer, 0)

    def allocated(self) -> float:
        """The sum of the shares given at the last tick (bytes/s)."""
        return sum(p.share for p in self._streams)

    def grant(self, pacer: Pacer, nbytes: int, now: float) -> bool:
        """Take ``nbytes`` for ``pacer`` at ``now``: True when granted at once (charged to its
        balance), False when it must wait for a tick (it is then queued for ``nbytes``)."""
        if self.egress <= 0.0:
            pacer.share = INF
            pacer.allowed = nbytes
            pacer.granted += nbytes
            self.granted += nbytes
            return True
        queued = self._streams.get(pacer)
        if queued is None:
            self._streams[pacer] = 0
            pacer._idle = 0.0
            if not 0.0 < pacer.share < INF:  # until its first tick: an equal part of the budget
                pacer.share = self.egress / len(self._streams)
        elif queued:
            raise RuntimeError("this pacer is already waiting")
        if pacer.balance < 0.0 < self._spare:  # what a stream that left did not use
            take = -pacer.balance if -pacer.balance < self._spare else self._spare
            pacer.balance += take
            self._spare -= take
        if pacer.balance >= 0.0:
            pacer.balance -= nbytes
            pacer.allowed = nbytes
            pacer._used += nbytes
            pacer.granted += nbytes
            self.granted += nbytes
            return True
        self._streams[pacer] = nbytes if nbytes > 0 else 1
        self._waiting += 1
        pacer.waits += 1
        self.waits += 1
        return False

    def leave(self, pacer: Pacer) -> None:
        """Take ``pacer`` out of the allocation (its stream ended); a pending wait is cancelled."""
        queued = self._streams.pop(pacer, None)
        if queued:
            self._waiting -= 1
        if queued is not None and pacer.balance > 0.0:
            self._spare += pacer.balance
            pacer.balance = 0.0
        fut = self._futures.pop(pacer, None)
        if fut is not None and not fut.done():
            fut.cancel()

    def tick(self, now: float) -> list[Pacer]:
        """Recompute the shares, credit ``share × dt`` and release the waiters now in credit
        (returned, in joining order); ``dt`` is the time since the last tick, at most MAX_DT."""
        if self._last == -INF:  # the first tick credits one quantum, like a restarted timer
            self._last = now - self.quantum
        dt = now - self._last
        if not dt > 0.0:
            return []
        self._last = now
        if dt > self.MAX_DT:
            dt = self.MAX_DT
        self.ticks += 1
        self._spare = 0.0  # unused credit lives one quantum, like the tick that gave it
        pacers = list(self._streams)
        if not pacers:
            return []
        floors = [0.0] * len(pacers)
        demands = [0.0] * len(pacers)
        streams = self._streams
        for k, p in enumerate(pacers):
            floors[k] = p.floor
            if streams[p] or now - p._released < self.GRACE:
                demands[k] = INF
                p._idle = 0.0
            elif p._used > 0.0:
                demands[k] = p._used / dt * self.HEADROOM
                p._idle = 0.0
            else:
                p._idle += dt
        shares = allocate(self.egress, floors, demands)
        released: list[Pacer] = []
        cap_dt = dt if dt > self.quantum else self.quantum
        for k, p in enumerate(pacers):
            s = shares[k]
            need = streams[p]
            b = p.balance
            old = p.share
            if b < 0.0 and 0.0 < s < old < INF:
                # A stream owes time, not bytes: a chunk taken at a larger share (alone, before a
                # crowd came) is paid off in the same time at the smaller one.  Never the other
                # way: a debt made at a tiny share would become a stall of minutes.
                owed = b * (s / old)
                self.forgiven += owed - b
                b = owed
            p.share = s
            p._used = 0.0
            b += s * dt
            cap = s * cap_dt
            if b > cap:
                b = cap
            p.balance = b
            if need:
                if b >= 0.0:
                    # One step of the share now, at most: a chunk asked for while the share was
                    # larger would otherwise be a debt of seconds.
                    step = int(s * (p.granularity if p.granularity > self.quantum else self.quantum))
                    if need > step:
                        need = step if step > 1024 else 1024
                    p.balance = b - need
                    p.allowed = need
                    p._used = float(need)
                    p._released = now
                    p.granted += need
                    self.granted += need
                    streams[p] = 0
                    self._waiting -= 1
                    released.append(p)
            elif p._idle > self.IDLE_DROP:
                del streams[p]
                p.balance = b if b < 0.0 else 0.0
        return released

    async def wait(self, pacer: Pacer, nbytes: int) -> int:
        """Return once ``pacer`` may send more: the bytes it may send now, ``nbytes`` or (after
        waiting, when its share fell meanwhile) fewer; at once when in credit or unlimited."""
        if self._closed:
            raise RuntimeError("PaceScheduler is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        if self.grant(pacer, nbytes, now):
            return nbytes
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
    ``chunk_size``, yielding to the loop between chunks; with a ``pacer`` each chunk first
    waits for its grant from ``scheduler`` (or sleeps on the pacer's own line, without one).
    Transports without sendfile (TLS, some loops) get ``os.pread`` into a fresh bytes object
    per write.  Returns less than ``count`` only when the file ended early; the caller must
    then close the connection.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if count <= 0:
        return 0
    # With a scheduler every chunk asks it (an unlimited one grants at once); without one, a
    # pacer with a rate keeps the fixed burst-then-pace line.
    paced = pacer is not None and (scheduler is not None or pacer.rate > 0.0)
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
    finally:
        fobj.close()
    return sent
