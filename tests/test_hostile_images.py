"""Image decoding bounded in memory (SPEC 10): near-cap pictures are reduced while they are read
and decoded a few at a time, so concurrent uploads cannot run the server out of memory."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import make_config, register
from PIL import Image

from app.main import create_app
from app.media import images

SIZE = (7744, 5164)  # 39.99 Mpx, just under the 40-Mpx limit
MIB = 1024 * 1024


def _picture(fmt: str) -> bytes:
    """A smooth 40-Mpx picture (small once compressed, as photos of skies and walls are)."""
    g = Image.linear_gradient("L").resize(SIZE)
    im = Image.merge("RGB", (g, g.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                             g.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {"compress_level": 1}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def pictures() -> dict[str, bytes]:
    return {"JPEG": _picture("JPEG"), "PNG": _picture("PNG")}


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(key)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set size, to the current one


class InFlight:
    """Counts decodes running at once (a spy around `images.process`)."""

    def __init__(self) -> None:
        self.now = self.peak = self.calls = 0
        self.lock = threading.Lock()

    def wrap(self, real: Any) -> Any:
        def process(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.now += 1
                self.calls += 1
                self.peak = max(self.peak, self.now)
            try:
                return real(*args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1
        return process


@pytest.fixture
def in_flight(monkeypatch: pytest.MonkeyPatch) -> Iterator[InFlight]:
    spy = InFlight()
    monkeypatch.setattr(images, "process", spy.wrap(images.process))
    yield spy


def test_near_cap_pictures_are_decoded_reduced(pictures: dict[str, bytes]) -> None:
    for fmt, data in pictures.items():
        assert len(data) < images.MAX_UPLOAD_BYTES
        with images._open(data) as im:  # noqa: SLF001 - the decoder's working size itself
            reduced = images._reduced(im)  # noqa: SLF001
            assert min(reduced.size) >= max(images.SIZES)
            assert reduced.width * reduced.height <= SIZE[0] * SIZE[1] // 16, (fmt, reduced.size)
        out = images.process(data)
        assert (out.width, out.height) == SIZE
        for size, jpeg in out.renditions.items():
            with Image.open(io.BytesIO(jpeg)) as im:
                assert im.size == (size, size)


def test_reduced_pictures_keep_their_orientation() -> None:
    raw = Image.new("RGB", (2600, 1300), (255, 0, 0))
    raw.paste((0, 0, 255), (1300, 0, 2600, 1300))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: red on top, blue below
    buf = io.BytesIO()
    raw.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    out = images.process(buf.getvalue())
    with Image.open(io.BytesIO(out.renditions[640])) as im:
        top, bottom = im.getpixel((320, 20)), im.getpixel((320, 620))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


async def test_concurrent_near_cap_uploads_stay_bounded(
    aiohttp_client: Any, database_url: str, tmp_path: Any, pictures: dict[str, bytes],
    in_flight: InFlight, capsys: pytest.CaptureFixture[str],
) -> None:
    """Eight 40-Mpx covers at once from one member, two decode slots: at most two decode at a
    time, all are stored, health answers throughout, and the peak stays far from the 2.7 GiB
    the unbounded decoder reached with four."""
    client: TestClient = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, image_decode_slots=2)))
    assert images.decode_slots() == 2
    member = await register(client)
    playlists = []
    for n in range(8):
        resp = await client.post("/api/playlist", json={"name": f"big {n}"}, headers=member.headers)
        assert resp.status == 201
        playlists.append((await resp.json())["id"])
    bodies = [(pictures["PNG" if n % 2 else "JPEG"] + bytes([n]), "PNG" if n % 2 else "JPEG")
              for n in range(8)]  # distinct bytes (after the end marker): no de-duplication
    await asyncio.sleep(0.2)
    _reset_peak()
    base = _status_mib("VmRSS")
    healthy: list[int] = []
    waits: list[float] = []  # reported, never asserted (speed belongs to make bench)

    async def upload(pid: int, data: bytes, fmt: str) -> int:
        resp = await client.put(f"/api/playlist/{pid}/cover", data=data,
                                headers={**member.headers, "Content-Type": f"image/{fmt.lower()}"})
        assert resp.status == 200, await resp.text()
        return resp.status

    async def health() -> None:
        while in_flight.calls < len(bodies) or in_flight.now:
            started = loop.time()
            resp = await client.get("/api/health")
            waits.append(loop.time() - started)
            healthy.append(resp.status)
            await asyncio.sleep(0.05)

    loop = asyncio.get_running_loop()
    watcher = asyncio.create_task(health())
    statuses = await asyncio.gather(*(upload(pid, data, fmt)
                                      for pid, (data, fmt) in zip(playlists, bodies, strict=True)))
    await asyncio.wait_for(watcher, timeout=60)
    peak = _status_mib("VmHWM")
    after = _status_mib("VmRSS")
    assert statuses == [200] * 8
    assert in_flight.calls == 8
    assert in_flight.peak == 2  # more uploads than slots: they waited their turn
    assert healthy and set(healthy) <= {200, 503}
    with capsys.disabled():
        print(f"\n[images] 8 concurrent 40-Mpx uploads, 2 slots: RSS {base:.0f} MiB before, "
              f"peak {peak:.0f} MiB (+{peak - base:.0f}), {after:.0f} MiB after; "
              f"/api/health answered {len(waits)} times, slowest {max(waits) * 1000:.0f} ms")
    assert peak - base < 900, (base, peak)
    # Every cover is stored and served.
    for pid in playlists:
        resp = await client.get(f"/api/playlist/{pid}", headers=member.headers)
        cover = (await resp.json())["cover_url"]
        assert cover
        resp = await client.get(cover)
        assert resp.status == 200 and resp.content_type == "image/jpeg"
