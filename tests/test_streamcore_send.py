"""send_range through a real aiohttp server, and its fallback, flow-control and stall paths."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import streamcore

IMPL = web.AppKey("impl", ModuleType)
PATH = web.AppKey("path", str)
CACHE = web.AppKey("cache", streamcore.FileCache)
SCHED = web.AppKey("sched", object)
LIMITED = web.AppKey("limited", object)
PACERS = web.AppKey("pacers", list)
BOUNDARY = "sonora-test-boundary"


async def stream(request: web.Request) -> web.StreamResponse:
    """The way Sonora's stream handler drives streamcore (see streamcore/README.md)."""
    impl: Any = request.app[IMPL]
    with request.app[CACHE].open(request.app[PATH]) as f:
        try:
            ranges = impl.parse_range(request.headers.get("Range"), f.size)
        except impl.RangeNotSatisfiable:
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{f.size}"}) from None
        resp = web.StreamResponse(status=200 if ranges is None else 206)
        resp.headers["ETag"] = f.etag
        if ranges is None:
            parts = [(b"", 0, f.size)]
            resp.content_length = f.size
        elif len(ranges) == 1:
            ((start, stop),) = ranges
            parts = [(b"", start, stop)]
            resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{f.size}"
            resp.content_length = stop - start
        else:
            parts = impl.multipart_parts(ranges, f.size, "audio/mpeg", BOUNDARY)
            resp.content_type = f"multipart/byteranges; boundary={BOUNDARY}"
            resp.content_length = impl.multipart_length(ranges, f.size, "audio/mpeg", BOUNDARY)
        writer = await resp.prepare(request)
        assert writer is not None and request.transport is not None
        loop = asyncio.get_running_loop()
        pacer = None
        sched = request.app[LIMITED] if "limited" in request.query else request.app[SCHED]
        if "pace" in request.query:
            pacer = impl.Pacer(float(request.query["pace"]), int(request.query["burst"]), loop.time())
            request.app[PACERS].append(pacer)
        for head, start, stop in parts:
            if head:
                await resp.write(head)
            sent = await impl.send_range(
                loop,
                request.transport,
                f.fd,
                start,
                stop - start,
                pacer=pacer,
                scheduler=sched if pacer else None,
                drain=writer.drain,
                stall_timeout=10.0,
            )
            assert sent == stop - start
        if len(parts) > 1:
            await resp.write(impl.multipart_closing(BOUNDARY))
        await resp.write_eof()
        return resp


@pytest.fixture
async def client(
    impl: ModuleType,
    audio_file: tuple[Path, bytes],
    aiohttp_server: Callable[[web.Application], Awaitable[Any]],
) -> Any:
    app = web.Application()
    app[IMPL] = impl
    app[PATH] = str(audio_file[0])
    app[CACHE] = streamcore.FileCache()
    sched: Any = impl.PaceScheduler()  # no egress budget: unlimited
    app[SCHED] = sched
    limited: Any = impl.PaceScheduler(200 * 1024, 0.05)  # 200 KiB/s for all streams
    app[LIMITED] = limited
    app[PACERS] = []
    app.router.add_get("/song", stream)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession(str(server.make_url("/"))) as session:
        session.pacers = app[PACERS]  # type: ignore[attr-defined]
        yield session
    sched.close()
    limited.close()
    app[CACHE].close()


@contextmanager
def read_fd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_full_file(client: Any, audio_file: tuple[Path, bytes]) -> None:
    data = audio_file[1]
    async with client.get("/song") as r:
        assert r.status == 200 and r.content_length == len(data)
        assert sha(await r.read()) == sha(data)
    async with client.get("/song", headers={"Range": "items=0-5"}) as r:
        assert r.status == 200 and sha(await r.read()) == sha(data)


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=1000-70000", 1000, 70001),
        ("bytes=-5000", -5000, None),
        ("bytes=3000000-", 3000000, None),
        ("bytes=10-999999999999", 10, None),
    ],
)
async def test_single_ranges(
    client: Any, audio_file: tuple[Path, bytes], header: str, start: int, stop: int | None
) -> None:
    data = audio_file[1]
    async with client.get("/song", headers={"Range": header}) as r:
        assert r.status == 206
        assert sha(await r.read()) == sha(data[start:stop])


async def test_multipart(client: Any, audio_file: tuple[Path, bytes]) -> None:
    data = audio_file[1]
    size = len(data)
    got = []
    async with client.get("/song", headers={"Range": "bytes=500-999,0-99,100-199,-10"}) as r:
        assert r.status == 206
        assert r.content_type == "multipart/byteranges"
        reader = aiohttp.MultipartReader.from_response(r)
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            got.append((part.headers["Content-Range"], bytes(await part.read())))
    async with client.get("/song", headers={"Range": "bytes=-10,0-1"}) as r:
        body = await r.read()
    ctype = b"Content-Type: audio/mpeg\r\n"
    assert body == (
        b"--%s\r\n%sContent-Range: bytes 0-1/%d\r\n\r\n%s"
        b"\r\n--%s\r\n%sContent-Range: bytes %d-%d/%d\r\n\r\n%s"
        b"\r\n--%s--\r\n"
    ) % (
        BOUNDARY.encode(),
        ctype,
        size,
        data[:2],
        BOUNDARY.encode(),
        ctype,
        size - 10,
        size - 1,
        size,
        data[-10:],
        BOUNDARY.encode(),
    )
    assert got == [
        (f"bytes 0-199/{size}", data[0:200]),
        (f"bytes 500-999/{size}", data[500:1000]),
        (f"bytes {size - 10}-{size - 1}/{size}", data[-10:]),
    ]


async def test_unsatisfiable(client: Any, audio_file: tuple[Path, bytes]) -> None:
    async with client.get("/song", headers={"Range": "bytes=-0"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(audio_file[1])}"


async def test_twelve_concurrent_full_downloads(client: Any, audio_file: tuple[Path, bytes]) -> None:
    expected = sha(audio_file[1])

    async def one() -> str:
        async with client.get("/song") as r:
            return sha(await r.read())

    assert await asyncio.gather(*(one() for _ in range(12))) == [expected] * 12


async def test_200_concurrent_small_ranges(client: Any, audio_file: tuple[Path, bytes]) -> None:
    data = audio_file[1]
    size = 64 * 1024

    async def one(i: int) -> bool:
        start = (i * 15013) % (len(data) - size)
        headers = {"Range": f"bytes={start}-{start + size - 1}"}
        async with client.get("/song", headers=headers) as r:
            return r.status == 206 and sha(await r.read()) == sha(data[start : start + size])

    assert all(await asyncio.gather(*(one(i) for i in range(200))))


async def _handler_done(condition: Callable[[], bool]) -> None:
    """The client can read the last byte before the handler has counted it: wait (bounded)."""
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the handler never finished")


async def test_paced_download(client: Any, audio_file: tuple[Path, bytes]) -> None:
    """Under a 200 KiB/s budget, a 100 KiB burst then the rest: the limiter holds it (it waited
    for its share, the whole budget since it is alone) and every byte arrives right."""
    data = audio_file[1]
    params = {"pace": str(50 * 1024), "burst": str(100 * 1024), "limited": "1"}
    async with client.get("/song", params=params, headers={"Range": "bytes=0-307199"}) as r:
        body = await r.read()
    assert sha(body) == sha(data[:307200])
    (pacer,) = client.pacers
    await _handler_done(lambda: pacer.sent == 307200)
    assert pacer.granted == 307200
    assert pacer.waits > 0  # held to the budget...
    assert pacer.share == 200 * 1024  # ...which it had to itself, not its 50 KiB/s floor


async def test_unlimited_download_never_waits(client: Any, audio_file: tuple[Path, bytes]) -> None:
    """No egress budget: a pacer with a floor is granted every chunk at once (no pacing)."""
    data = audio_file[1]
    async with client.get("/song", params={"pace": "1000", "burst": "0"}) as r:
        body = await r.read()
    assert sha(body) == sha(data)
    (pacer,) = client.pacers
    await _handler_done(lambda: pacer.sent == len(data))
    assert pacer.granted == len(data)
    assert pacer.waits == 0
    assert pacer.share == float("inf")


class FakeTransport(asyncio.WriteTransport):
    """A transport without sendfile support (like TLS) that records what it is handed."""

    def __init__(self, drains: bool = True) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.buffered = 0
        self.drains = drains
        self.drain_calls = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert isinstance(data, bytes)
        self.writes.append(data)
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 100_000)

    def is_closing(self) -> bool:
        return self.closing

    async def drain(self) -> None:
        self.drain_calls += 1
        if self.drains:
            self.buffered = 0
        else:
            await asyncio.sleep(3600)


async def test_fallback_fresh_buffers(impl: ModuleType, audio_file: tuple[Path, bytes]) -> None:
    path, data = audio_file
    loop = asyncio.get_running_loop()
    t = FakeTransport()
    with read_fd(path) as fd:
        sent = await impl.send_range(loop, t, fd, 123, 1_000_000, chunk_size=64 * 1024, drain=t.drain)
    assert sent == 1_000_000
    assert b"".join(t.writes) == data[123:1_000_123]
    assert len({id(w) for w in t.writes}) == len(t.writes) == 16  # never one reused buffer
    assert t.drain_calls >= 1  # 64 KiB chunks crossed the 100 KB high-water mark


async def test_stall_timeout_fallback(impl: ModuleType, audio_file: tuple[Path, bytes]) -> None:
    loop = asyncio.get_running_loop()
    t = FakeTransport(drains=False)
    with read_fd(audio_file[0]) as fd:
        with pytest.raises(streamcore.StallTimeout):
            await impl.send_range(loop, t, fd, 0, 1_000_000, drain=t.drain, stall_timeout=0.1)
        t2 = FakeTransport(drains=False)
        with pytest.raises(streamcore.StallTimeout):  # no drain hook: polls the buffer size
            await impl.send_range(loop, t2, fd, 0, 1_000_000, stall_timeout=0.1)
        t3 = FakeTransport()
        t3.closing = True
        with pytest.raises(ConnectionResetError):
            await impl.send_range(loop, t3, fd, 0, 10)
        assert await impl.send_range(loop, t3, fd, 0, 0) == 0
        with pytest.raises(ValueError):
            await impl.send_range(loop, t3, fd, 0, 10, chunk_size=0)


async def test_short_file(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"x" * 1000)
    loop = asyncio.get_running_loop()
    t = FakeTransport()
    with read_fd(path) as fd:
        assert await impl.send_range(loop, t, fd, 900, 500) == 100


async def test_stall_timeout_native(impl: ModuleType, tmp_path: Path) -> None:
    """A peer that never reads is detected on the sendfile path too."""
    path = tmp_path / "sparse.bin"
    path.touch()
    os.truncate(path, 256 * 1024 * 1024)  # sparse: zeros without writing them
    loop = asyncio.get_running_loop()
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with read_fd(path) as fd, pytest.raises(streamcore.StallTimeout):
            await impl.send_range(
                loop,
                writer.transport,
                fd,
                0,
                256 * 1024 * 1024,
                chunk_size=4 * 1024 * 1024,
                drain=writer.drain,
                stall_timeout=0.3,
            )
    finally:
        writer.transport.abort()
        for w in accepted:
            w.transport.abort()
        server.close()
        await server.wait_closed()
