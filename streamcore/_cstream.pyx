# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of streamcore._pystream: same public API, C arithmetic on the hot paths.

Range parsing walks the header once with C integers (numbers clamped to 2**62, so they never
overflow); the pacer and scheduler keep their state in C doubles/long longs.  The file cache
and multipart helpers are not hot and are shared with the reference (streamcore._common).
"""

import asyncio
import heapq
import io
import os

from cpython.mem cimport PyMem_Free, PyMem_Malloc

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


cdef class Pacer:
    """Burst-then-pace byte budget for one stream, on an injected clock.

    Bytes sent by time ``t`` never exceed ``burst + rate * (t - t0)``; a rate of 0 or less
    means unpaced.  Use ``loop.time()`` for ``now`` when pacing with :class:`PaceScheduler`.
    """

    cdef public double rate
    cdef public long long burst
    cdef public double t0
    cdef public double granularity
    cdef long long _sent

    def __init__(self, double rate, long long burst, double now, double granularity=0.1):
        self.rate = rate
        self.burst = burst
        self.t0 = now
        self.granularity = granularity
        self._sent = 0

    @property
    def sent(self):
        """Bytes recorded by :meth:`consume` so far."""
        return self._sent

    @property
    def paced(self):
        """Whether this pacer limits anything at all."""
        return self.rate > 0.0

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
        """A good next chunk size (at most ``limit``): the rest of the burst, then rate×granularity."""
        cdef long long left
        cdef double step
        if self.rate <= 0.0:
            return limit
        left = self.burst - self._sent
        if left > 0:
            return limit if limit < left else left
        step = self.rate * self.granularity
        if step < 1024.0:
            step = 1024.0
        if step >= <double> limit:
            return limit
        return <long long> step


cdef class PaceScheduler:
    """Wakes paced streams from one heap and one timer, whatever the number of streams.

    Every due waiter is released in one batch per wakeup; cancelled waits are skipped.
    """

    SLACK = 0.001

    cdef list _heap
    cdef long long _seq
    cdef object _loop
    cdef object _handle
    cdef double _when
    cdef double _slack
    cdef bint _closed

    def __init__(self):
        self._heap = []
        self._seq = 0
        self._loop = None
        self._handle = None
        self._when = 0.0
        self._slack = 0.001
        self._closed = False

    def __len__(self):
        return len(self._heap)

    @property
    def closed(self):
        """True once :meth:`close` has been called."""
        return self._closed

    async def wait(self, Pacer pacer not None, long long nbytes):
        """Return once ``pacer`` allows ``nbytes`` more (at once when already allowed)."""
        cdef double now, delay, deadline
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
        fut = loop.create_future()
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, fut))
        if self._handle is None or deadline < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = deadline
            self._handle = loop.call_at(deadline, self._wake)
        await fut

    def _wake(self):
        cdef list heap = self._heap
        cdef double due
        self._handle = None
        loop = self._loop
        due = loop.time() + self._slack
        while heap and <double> heap[0][0] <= due:
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(None)
        if heap:
            self._when = heap[0][0]
            self._handle = loop.call_at(self._when, self._wake)

    def close(self):
        """Cancel every pending wait (they raise CancelledError) and refuse new ones."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        heap = self._heap
        self._heap = []
        for item in heap:
            fut = item[2]
            if not fut.done():
                fut.cancel()


async def _drain(transport, drain, stall_timeout):
    """Wait until the transport's buffer is under its high-water mark, watching for stalls."""
    cdef Py_ssize_t high, size, now_size
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


async def _native(loop, transport, fobj, long long offset, long long n, stall_timeout):
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
    loop,
    transport,
    int fd,
    long long offset,
    long long count,
    *,
    Pacer pacer=None,
    PaceScheduler scheduler=None,
    long long chunk_size=256 * 1024,
    drain=None,
    stall_timeout=None,
):
    """Send ``count`` bytes of ``fd`` from ``offset`` on ``transport``; return bytes sent.

    Unpaced bytes go through ``loop.sendfile`` (zero copy) in chunks of at most
    ``chunk_size``, yielding to the loop between chunks; paced ones wait on ``scheduler``
    (or sleep, without one) before each chunk.  Transports without sendfile (TLS, some
    loops) get ``os.pread`` into a fresh bytes object per write.  Returns less than
    ``count`` only when the file ended early; the caller must then close the connection.
    """
    cdef long long sent = 0, n, done, c
    cdef double delay
    cdef bint paced, native = True
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if count <= 0:
        return 0
    paced = pacer is not None and pacer.rate > 0.0
    # A non-owning file object: sendfile passes explicit offsets, so sharing the fd (and its
    # file position) with other responses is safe.
    fobj = io.FileIO(fd, "rb", closefd=False)
    try:
        while sent < count:
            n = count - sent
            if n > chunk_size:
                n = chunk_size
            if paced:
                c = pacer.chunk(chunk_size)
                if c < n:
                    n = c
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
