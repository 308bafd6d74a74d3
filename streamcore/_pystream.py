"""Pure-Python reference implementation of streamcore's hot parts (the compiled twin mirrors it).

The parts both twins share (the sender, the scheduler's event-loop side, the file cache, the
multipart helpers, the exceptions) live once in streamcore._common and are re-exported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ._common import (
    NUMBER_LIMIT,
    FileCache,
    OpenFile,
    RangeNotSatisfiable,
    SchedulerLoop,
    StallTimeout,
    multipart_closing,
    multipart_length,
    multipart_parts,
    send_range,
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
    level)``, a stream with no floor counting ``budget / n`` as one there, so that a stream
    still in its burst never starves it.  Either way the shares never add up to more than
    ``budget`` and no stream can get more without taking from one that has no more than it,
    unless that one is at its floor.
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
    if base == budget:  # the floors take it exactly
        return lo
    if base > budget:  # the floors alone take more: share the budget under them
        # A stream with no floor (past its burst with no pace) is capped at an equal part of the
        # budget instead of at 0, so one still in its burst never starves it.
        part = budget / n
        for i in range(n):
            cap = lo[i]
            if not cap > 0.0:
                cap = part if part < hi[i] else hi[i]
            hi[i] = cap
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


class PaceScheduler(SchedulerLoop):
    """The byte-rate limiter of every stream: one global egress budget shared max-min fairly.

    ``egress`` is bytes per second for all streams together; 0 (or less) means no limit, and then
    :meth:`wait` never sleeps.  Otherwise every ``quantum`` seconds (while streams take part) one
    tick recomputes every stream's share with :func:`allocate` — demand ``inf`` for a stream that
    waits, else what it took in the last tick plus a quarter — credits each balance with
    ``share × dt`` and releases the waiters whose balance is back to zero or more.  A stream
    whose balance is not negative sends at once and pays afterwards; a new stream joins with one
    step (``granularity`` seconds) of its share at most and pays a step's worth at most of what
    streams that left still owed (``leave``), so back-to-back short responses cannot each take a
    free chunk past the budget; one that neither waited nor sent for ``IDLE_DROP`` seconds
    leaves the allocation until it asks again.  Credit that a stream leaving (:meth:`leave`) did
    not use goes to the next stream that asks before the next tick, so a client that downloads
    one file after another is not held back by the tick.  A debt is owed in time: when a share
    falls, what a stream owes falls with it (the bytes this forgives are counted in
    ``forgiven``), and a stream released from the queue gets at most one step (``granularity``
    seconds) of its share now, whatever it asked for while its share was larger.
    """

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
        self._debt = 0.0  # what streams that left still owed: the next ones to join pay it
        self._streams: dict[Pacer, int] = {}  # pacer -> bytes it waits for (0: not waiting)
        self._futures: dict[Pacer, asyncio.Future[None]] = {}
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._last = -INF
        self._closed = False

    def grant(self, pacer: Pacer, nbytes: int, now: float) -> bool:
        """Take ``nbytes`` for ``pacer`` at ``now``: True when granted at once (charged to its
        balance), False when it must wait for a tick (it is then queued for ``nbytes``)."""
        if pacer is None:  # as the compiled twin: refused before it joins the allocation
            raise TypeError("Argument 'pacer' must not be None")
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
            # A stream joins with one step of its share at most (its first chunk was sized before
            # it had one), and with a step's worth at most of what streams that left still owed:
            # back-to-back short responses cannot each take a free chunk past the budget.
            step = pacer.share * (pacer.granularity if pacer.granularity > self.quantum
                                  else self.quantum)
            if nbytes > step:
                nbytes = int(step) if step > 1024 else (1024 if nbytes > 1024 else nbytes)
            if self._debt > 0.0:
                take = self._debt if self._debt < step else step
                pacer.balance -= take
                self._debt -= take
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
                    if need > step:  # but 1 KiB at least (never more than it asked for)
                        need = step if step > 1024 else (1024 if need > 1024 else need)
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
