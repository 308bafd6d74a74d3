"""Many paced streams at once, read by cheap asyncio protocols; prints one JSON report.

Run by `bench.streaming` in its own process: `python -m bench.paced_client HOST PORT PATH TOKEN
STREAMS SECONDS BURST`. Every stream's rate is measured over one window: from when the last stream
is through its burst (BURST bytes) to the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.received = 0
        self.samples: list[tuple[float, int]] = []
        self.header_end = -1
        self.buf = b""
        self.status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.header_end < 0:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.buf[9:12])
            data = self.buf[end + 4:]
            self.header_end = end
            self.buf = b""
        self.received += len(data)
        self.samples.append((time.monotonic(), self.received))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


def rate_between(samples: list[tuple[float, int]], t1: float, t2: float) -> float | None:
    """Bytes per second from t1 to t2: the least-squares slope of bytes received over time, so a
    stream paced in steps is judged on its rate, not on where a step falls at the window's ends."""
    window = [(t, n) for t, n in samples if t1 <= t <= t2]
    if len(window) < 3 or window[-1][0] - window[0][0] < (t2 - t1) / 2:
        return None
    mt = sum(t for t, _ in window) / len(window)
    mn = sum(n for _, n in window) / len(window)
    var = sum((t - mt) ** 2 for t, _ in window)
    return sum((t - mt) * (n - mn) for t, n in window) / var if var else None


async def main(host: str, port: int, path: str, token: str, streams: int, seconds: float,
               burst: int) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, streams * 2 + 100), hard), hard))
    loop = asyncio.get_running_loop()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
               f"Connection: close\r\n\r\n").encode()
    protocols: list[Stream] = []
    transports = []
    started = time.monotonic()
    # Open in batches, so the server's listen backlog never overflows into SYN retries.
    for i in range(0, streams, 100):
        batch = await asyncio.gather(*(loop.create_connection(lambda: Stream(request), host, port)
                                       for _ in range(min(100, streams - i))))
        for transport, protocol in batch:
            transports.append(transport)
            protocols.append(protocol)
        await asyncio.sleep(0.02)
    opened = time.monotonic() - started
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    end = time.monotonic()
    for t in transports:
        t.close()
    # One window for every stream: from when the last of them is through its burst (plus one
    # pacing step) to the end, so each is judged while all of them share the budget.
    after_burst = [next((t for t, n in p.samples if n >= burst), None) for p in protocols]
    through = [t for t in after_burst if t is not None]
    start = (max(through) if through else end) + 0.5
    rates: list[float | None] = []
    for p, t in zip(protocols, after_burst, strict=True):
        rates.append(None if t is None else rate_between(p.samples, start, end))
    return {"streams": streams, "opened_in": opened, "statuses": sorted({p.status for p in protocols}),
            "rates": rates, "window": end - start, "window_end": end - started,
            "unmeasured": [(p.status, p.received, len(p.samples)) for p, r in
                           zip(protocols, rates, strict=True) if r is None][:10]}


if __name__ == "__main__":
    host, port, path, token, streams, seconds, burst = sys.argv[1:8]
    result = asyncio.run(main(host, int(port), path, token, int(streams), float(seconds), int(burst)))
    json.dump(result, sys.stdout)
