# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of streamcore._pystream: same public API, C arithmetic on the hot paths.

Range parsing walks the header once with C integers (numbers clamped to 2**62, so they never
overflow); the pacer and scheduler keep their state in C doubles/long longs, and the
scheduler's ``grant``/``tick`` and ``allocate`` run in C.  Everything else (the sender, the
scheduler's event-loop side, the file cache, the multipart helpers, the exceptions) is one copy
shared with the reference, in streamcore._common.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdlib cimport qsort

from ._common import (
    GRACE,
    HEADROOM,
    IDLE_DROP,
    MAX_DT,
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

cdef long long LIMIT = 1LL << 62


cdef Py_UCS4 *_BYTES = [98, 121, 116, 101, 115]  # "bytes"


cdef inline bint _ows(Py_UCS4 c) noexcept:
    return c == 32 or c == 9


cdef long long _number(str h, Py_ssize_t a, Py_ssize_t b):
    """ASCII digits h[a:b] as a clamped long long; -1 when not 1+ ASCII digits."""
    cdef long long v = 0
    cdef long long d
    cdef Py_UCS4 c
    cdef Py_ssize_t k
    if a >= b:
        return -1
    for k in range(a, b):
        c = h[k]
        if c < 48 or c > 57:
            return -1
        d = <long long> c - 48
        if v > (LIMIT - d) // 10:
            v = LIMIT
        else:
            v = v * 10 + d
    return v


cdef bint _unit_is_bytes(str h, Py_ssize_t a, Py_ssize_t b):
    cdef Py_UCS4 c
    cdef Py_ssize_t k
    while a < b and _ows(h[a]):
        a += 1
    while b > a and _ows(h[b - 1]):
        b -= 1
    if b - a != 5:
        return False
    for k in range(5):
        c = h[a + k]
        if 65 <= c <= 90:
            c = <Py_UCS4> (<int> c + 32)
        if c != _BYTES[k]:
            return False
    return True


def parse_range(header, long long size, Py_ssize_t max_ranges=16):
    """Parse an RFC 9110 ``Range`` header against a file of ``size`` bytes.

    Returns sorted, merged, half-open ``(start, stop)`` ranges, or None when the whole file
    should be sent with 200 (no header, malformed, another unit, too many ranges or a
    pathological set).  Raises :class:`RangeNotSatisfiable` when the header is valid but no
    range overlaps the file.
    """
    cdef str h
    cdef Py_ssize_t n, eq, i, j, a, b, dash, k, count = 0, w = 0, cap
    cdef long long start, stop, end, suffix, s, e
    cdef unsigned long long total = 0
    cdef long long *starts
    cdef long long *stops
    if size < 0 or size > LIMIT:
        raise ValueError("size out of range")
    if not header:
        return None
    h = header
    n = len(h)
    eq = h.find("=")
    if eq < 0 or not _unit_is_bytes(h, 0, eq):
        return None
    cap = max_ranges if max_ranges > 0 else 1
    starts = <long long *> PyMem_Malloc(2 * cap * sizeof(long long))
    if starts == NULL:
        raise MemoryError()
    stops = starts + cap
    try:
        i = eq + 1
        while i <= n:
            j = i
            while j < n and h[j] != ",":
                j += 1
            a = i
            b = j
            i = j + 1
            while a < b and _ows(h[a]):
                a += 1
            while b > a and _ows(h[b - 1]):
                b -= 1
            if a == b:
                continue  # RFC 9110 §5.6.1: empty list elements are tolerated
            count += 1
            if count > max_ranges:
                return None
            dash = -1
            for k in range(a, b):
                if h[k] == "-":
                    dash = k
                    break
            if dash < 0:
                return None
            if dash == a:
                suffix = _number(h, dash + 1, b)
                if suffix < 0:
                    return None
                if suffix > 0 and size > 0:
                    starts[w] = size - suffix if suffix < size else 0
                    stops[w] = size
                    w += 1
                continue
            start = _number(h, a, dash)
            if start < 0:
                return None
            if dash + 1 < b:
                end = _number(h, dash + 1, b)
                if end < 0 or end < start:
                    return None
                stop = end + 1 if end + 1 < size else size
            else:
                stop = size
            if start < size:
                starts[w] = start
                stops[w] = stop
                w += 1
        if count == 0:
            return None
        if w == 0:
            raise RangeNotSatisfiable(f"bytes */{size}")
        # Many small overlapping ranges cost far more than the whole file: answer 200.
        for k in range(w):
            total += <unsigned long long> (stops[k] - starts[k])
        if total > 2 * <unsigned long long> size:
            return None
        # Insertion sort: w <= max_ranges, a handful.
        for k in range(1, w):
            s = starts[k]
            e = stops[k]
            j = k - 1
            while j >= 0 and (starts[j] > s or (starts[j] == s and stops[j] > e)):
                starts[j + 1] = starts[j]
                stops[j + 1] = stops[j]
                j -= 1
            starts[j + 1] = s
            stops[j + 1] = e
        result = []
        s = starts[0]
        e = stops[0]
        for k in range(1, w):
            if starts[k] <= e:  # overlapping or adjacent
                if stops[k] > e:
                    e = stops[k]
            else:
                result.append((s, e))
                s = starts[k]
                e = stops[k]
        result.append((s, e))
        return result
    finally:
        PyMem_Free(starts)


cdef double INF = float("inf")


cdef class Pacer:
    """One stream's byte account: its floor (burst, then ``rate``), its share and its balance.

    Under a :class:`PaceScheduler` the pacer is the stream's seat at the allocator: its floor is
    full speed while fewer than ``burst`` bytes went (``sent``), then ``rate`` bytes/s (0 or less:
    no floor beyond the fair share); ``share`` is the rate the allocator last gave it (``inf``
    when unlimited, 0.0 before it joined) and ``balance`` the bytes it may still send (negative:
    owed).  Without a scheduler it is the fixed burst-then-pace line of the reference: bytes sent
    by time ``t`` never exceed ``burst + rate * (t - t0)`` (:meth:`delay`); rate <= 0 is unpaced.
    """

    cdef public double rate
    cdef public long long burst
    cdef public double t0
    cdef public double granularity
    cdef public double share
    cdef public double balance
    cdef public long long waits
    cdef public long long granted
    cdef public long long allowed
    cdef long long _sent
    cdef double _used
    cdef double _idle
    cdef double _released

    def __init__(self, double rate, long long burst, double now, double granularity=0.1):
        self.rate = rate
        self.burst = burst
        self.t0 = now
        self.granularity = granularity
        self._sent = 0
        self.share = 0.0
        self.balance = 0.0
        self.waits = 0
        self.granted = 0
        self.allowed = 0
        self._used = 0.0
        self._idle = 0.0
        self._released = -INF

    @property
    def sent(self):
        """Bytes recorded by :meth:`consume` so far."""
        return self._sent

    @property
    def paced(self):
        """Whether this pacer limits anything at all on its own (without a scheduler)."""
        return self.rate > 0.0

    @property
    def floor(self):
        """The rate this stream is owed before any sharing: inf during the burst, then rate."""
        return self._floor()

    cdef inline double _floor(self):
        if self._sent < self.burst:
            return INF
        return self.rate if self.rate > 0.0 else 0.0

    cpdef double delay(self, long long nbytes, double now):
        """Seconds to wait at ``now`` before ``nbytes`` more may be sent (0.0 if at once)."""
        cdef long long excess
        cdef double wait
        if self.rate <= 0.0:
            return 0.0
        excess = self._sent + nbytes - self.burst
        if excess <= 0:
            return 0.0
        wait = self.t0 + (<double> excess) / self.rate - now
        return wait if wait > 0.0 else 0.0

    cpdef consume(self, long long nbytes):
        """Record ``nbytes`` as sent."""
        self._sent += nbytes

    cpdef long long chunk(self, long long limit):
        """A good next chunk size (at most ``limit``): the rest of the burst, then
        ``granularity`` seconds of the share (or of the rate, before a share is known)."""
        cdef long long left = self.burst - self._sent
        cdef double basis, step
        cdef long long k
        if left > 0:
            if 0.0 < self.share < INF:  # a shared budget: the burst too goes in steps of the share
                step = self.share * self.granularity
                k = <long long> step if step < <double> limit else limit
                if k < 1024:
                    k = 1024
                if k < limit:
                    limit = k
            return limit if limit < left else left
        basis = self.share if self.share > 0.0 else self.rate
        if basis <= 0.0 or basis == INF:
            return limit
        step = basis * self.granularity
        if step >= <double> limit:
            return limit
        k = <long long> step
        if k < 1024:
            k = 1024
        return limit if limit < k else k


cdef int _cmp_double(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const double *> a)[0]
    cdef double y = (<const double *> b)[0]
    return (x > y) - (x < y)


cdef double _level(double budget, double base, double *lo, double *hi, Py_ssize_t n,
                   double *los, double *his) noexcept nogil:
    """The L at which sum(clamp(L, lo_i, hi_i)) reaches ``budget`` (see _pystream._level)."""
    cdef Py_ssize_t i = 0, j = 0, k
    cdef long long slope = 0
    cdef double level, total = base, nxt, step
    for k in range(n):
        los[k] = lo[k]
        his[k] = hi[k]
    qsort(los, n, sizeof(double), _cmp_double)
    qsort(his, n, sizeof(double), _cmp_double)
    level = los[0]
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


cdef int _allocate(double budget, double *floors, double *demands, double *out,
                   Py_ssize_t n) except -1:
    """Water-fill ``budget`` into ``out`` (see :func:`allocate`); floors/demands are clobbered."""
    cdef double *lo = floors
    cdef double *hi = demands
    cdef double base = 0.0, top = 0.0, d, f, x, level
    cdef double *work
    cdef Py_ssize_t i
    for i in range(n):
        d = hi[i]
        f = lo[i]
        if not d > 0.0:
            d = 0.0
        if not f > 0.0:
            f = 0.0
        lo[i] = f if f < d else d
        hi[i] = d
        base += lo[i]
    if base == budget:  # the floors take it exactly
        for i in range(n):
            out[i] = lo[i]
        return 0
    if base > budget:  # share the budget under the floors; no floor: an equal part (see _pystream)
        part = budget / n
        for i in range(n):
            x = lo[i]
            if not x > 0.0:
                x = part if part < hi[i] else hi[i]
            hi[i] = x
            lo[i] = 0.0
        base = 0.0
    for i in range(n):
        top += hi[i]
    if top <= budget:
        for i in range(n):
            out[i] = hi[i]
        return 0
    work = <double *> PyMem_Malloc(2 * n * sizeof(double))
    if work == NULL:
        raise MemoryError()
    level = _level(budget, base, lo, hi, n, work, work + n)
    PyMem_Free(work)
    for i in range(n):
        x = level if level > lo[i] else lo[i]
        out[i] = x if x < hi[i] else hi[i]
    return 0


def allocate(double budget, floors, demands):
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
    cdef Py_ssize_t n = len(floors), i
    cdef double *buf
    if not budget > 0.0 or budget == INF:
        raise ValueError("budget must be a positive finite number of bytes per second")
    if len(demands) != n:
        raise ValueError("floors and demands differ in length")
    if n == 0:
        return []
    buf = <double *> PyMem_Malloc(3 * n * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            buf[i] = floors[i]
            buf[n + i] = demands[i]
        _allocate(budget, buf, buf + n, buf + 2 * n, n)
        return [buf[2 * n + i] for i in range(n)]
    finally:
        PyMem_Free(buf)


cdef class _SchedulerCore:
    """PaceScheduler's state in C and its arithmetic, ``grant`` and ``tick``; the event-loop
    side (wait, the timer, leave, close) is streamcore._common.SchedulerLoop."""

    cdef public double egress
    cdef public double quantum
    cdef public long long granted
    cdef public long long waits
    cdef public long long ticks
    cdef public double forgiven
    # Public only for SchedulerLoop (the shared event-loop side); not part of the API.
    cdef public double _spare
    cdef public double _debt
    cdef public dict _streams
    cdef public dict _futures
    cdef public Py_ssize_t _waiting
    cdef public object _loop
    cdef public object _handle
    cdef public double _last
    cdef public bint _closed
    cdef double _headroom, _idle_drop, _max_dt, _grace

    def __init__(self, double egress=0.0, double quantum=0.1):
        if not quantum > 0.0:
            raise ValueError("quantum must be positive")
        self.egress = egress if egress > 0.0 else 0.0
        self.quantum = quantum
        self.granted = 0
        self.waits = 0
        self.ticks = 0
        self.forgiven = 0.0
        self._spare = 0.0
        self._debt = 0.0
        self._streams = {}
        self._futures = {}
        self._waiting = 0
        self._loop = None
        self._handle = None
        self._last = -INF
        self._closed = False
        self._headroom = HEADROOM
        self._grace = GRACE
        self._idle_drop = IDLE_DROP
        self._max_dt = MAX_DT

    cpdef bint grant(self, Pacer pacer, long long nbytes, double now) except -1:
        """Take ``nbytes`` for ``pacer`` at ``now``: True when granted at once (charged to its
        balance), False when it must wait for a tick (it is then queued for ``nbytes``)."""
        cdef double take, step
        if pacer is None:  # 'not None' is for def functions only; the shared wait() comes here
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
            # One step of its share at most, and a step's worth of the debt left (see _pystream).
            step = pacer.share * (pacer.granularity if pacer.granularity > self.quantum
                                  else self.quantum)
            if <double> nbytes > step:
                nbytes = <long long> step if step > 1024.0 else (1024 if nbytes > 1024 else nbytes)
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

    cpdef list tick(self, double now):
        """Recompute the shares, credit ``share × dt`` and release the waiters now in credit
        (returned, in joining order); ``dt`` is the time since the last tick, at most MAX_DT."""
        cdef double dt = now - self._last, s, b, cap, cap_dt, owed, old
        cdef Py_ssize_t n, k
        cdef long long need, step
        cdef double *buf
        cdef Pacer p
        cdef list pacers, released
        cdef dict streams = self._streams
        if self._last == -INF:  # the first tick credits one quantum, like a restarted timer
            self._last = now - self.quantum
            dt = self.quantum
        if not dt > 0.0:
            return []
        self._last = now
        if dt > self._max_dt:
            dt = self._max_dt
        self.ticks += 1
        self._spare = 0.0  # unused credit lives one quantum, like the tick that gave it
        pacers = list(streams)
        n = len(pacers)
        if n == 0:
            return []
        buf = <double *> PyMem_Malloc(3 * n * sizeof(double))
        if buf == NULL:
            raise MemoryError()
        released = []
        try:
            for k in range(n):
                p = <Pacer> pacers[k]
                buf[k] = p._floor()
                if streams[p] or now - p._released < self._grace:
                    buf[n + k] = INF
                    p._idle = 0.0
                elif p._used > 0.0:
                    buf[n + k] = p._used / dt * self._headroom
                    p._idle = 0.0
                else:
                    buf[n + k] = 0.0
                    p._idle += dt
            _allocate(self.egress, buf, buf + n, buf + 2 * n, n)
            cap_dt = dt if dt > self.quantum else self.quantum
            for k in range(n):
                p = <Pacer> pacers[k]
                s = buf[2 * n + k]
                need = streams[p]
                b = p.balance
                old = p.share
                if b < 0.0 and 0.0 < s < old < INF:
                    # A stream owes time, not bytes (see _pystream).
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
                        # One step of the share now, at most (see _pystream).
                        cap = s * (p.granularity if p.granularity > self.quantum else self.quantum)
                        if <double> need > cap:  # compared as doubles: a huge share is no overflow
                            need = <long long> cap if cap > 1024.0 else (1024 if need > 1024 else need)
                        p.balance = b - need
                        p.allowed = need
                        p._used = <double> need
                        p._released = now
                        p.granted += need
                        self.granted += need
                        streams[p] = 0
                        self._waiting -= 1
                        released.append(p)
                elif p._idle > self._idle_drop:
                    del streams[p]
                    p.balance = b if b < 0.0 else 0.0
        finally:
            PyMem_Free(buf)
        return released


class PaceScheduler(_SchedulerCore, SchedulerLoop):
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

    __slots__ = ()
