"""GET|HEAD /api/stream/:song_id: bytes equal to the file on disk for every range form,
conditional requests and HEAD, on both streamcore implementations (SPEC §6)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, make_audio, make_config, register
from multidict import CIMultiDictProxy

import streamcore
from app.config import Config
from app.main import create_app
from app.media.audiogen import ffmpeg_path
from app.web import keys
from app.web import stream as streaming_http

IMPLEMENTATIONS: list[ModuleType] = [streamcore._pystream]
if streamcore._cstream is not None:
    IMPLEMENTATIONS.insert(0, streamcore._cstream)
PATCHED = ("parse_range", "send_range", "Pacer", "PaceScheduler")


@pytest.fixture(params=IMPLEMENTATIONS, ids=[m.__name__.rsplit(".", 1)[-1] for m in IMPLEMENTATIONS])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Serve through one streamcore implementation (the app imports the selected one)."""
    module: ModuleType = request.param
    for name in PATCHED:
        monkeypatch.setattr(streaming_http, name, getattr(module, name))
    return module


@pytest.fixture
async def sclient(aiohttp_client: Any, config: Config, impl: ModuleType) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(config))


class Song:
    """An uploaded song, the bytes of the file it came from, and who can stream it."""

    def __init__(self, data: dict[str, Any], body: bytes, account: Account) -> None:
        self.data = data
        self.id: int = data["id"]
        self.body = body
        self.account = account
        self.url = f"/api/stream/{self.id}"


async def upload_song(client: TestClient, path: Path, account: Account | None = None) -> Song:
    """Upload `path` as an admin; `account` (default: that admin) is who streams it."""
    admin = await make_admin(client, await register(client))
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                   content_type="application/octet-stream")
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return Song(await resp.json(), path.read_bytes(), account or admin)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_common(h: CIMultiDictProxy[str], song: Song) -> None:
    assert h["Accept-Ranges"] == "bytes"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', h["ETag"]), h["ETag"]
    assert h["Last-Modified"].endswith(" GMT")
    assert h["Cache-Control"] == "private"


@pytest.fixture
async def song(sclient: TestClient, audio_dir: Path) -> Song:
    return await upload_song(sclient, make_audio(audio_dir, "mp3", seconds=3.0))


@pytest.fixture
async def big_song(sclient: TestClient, audio_dir: Path) -> Song:
    """A few MB of real audio (30 s of WAV, ~5 MB)."""
    return await upload_song(sclient, make_audio(audio_dir, "wav", seconds=30.0))


async def test_whole_file_get_and_head(sclient: TestClient, song: Song) -> None:
    h = song.account.headers
    resp = await sclient.get(song.url, headers=h)
    assert resp.status == 200
    assert await resp.read() == song.body
    check_common(resp.headers, song)
    assert resp.headers["Content-Type"] == song.data["mime_type"]
    assert int(resp.headers["Content-Length"]) == len(song.body)
    head = await sclient.head(song.url, headers=h)
    assert head.status == 200 and await head.read() == b""
    for name in ("ETag", "Last-Modified", "Content-Type", "Content-Length", "Accept-Ranges",
                 "Cache-Control"):
        assert head.headers[name] == resp.headers[name], name
    ranged = await sclient.head(song.url, headers={**h, "Range": "bytes=10-19"})
    assert ranged.status == 206 and ranged.headers["Content-Range"] == f"bytes 10-19/{len(song.body)}"
    assert ranged.headers["Content-Length"] == "10" and await ranged.read() == b""


async def test_single_range_forms(sclient: TestClient, big_song: Song) -> None:
    body, n = big_song.body, len(big_song.body)
    cases = {
        "bytes=0-0": (0, 1),
        "bytes=100-65635": (100, 65636),
        f"bytes={n - 1000}-": (n - 1000, n),
        "bytes=-4096": (n - 4096, n),
        f"bytes=-{n * 3}": (0, n),  # a suffix longer than the file is the whole file
        f"bytes={n - 10}-{n * 5}": (n - 10, n),  # an end past the file is cut
        "bytes=0-99, 50-199, 200-299": (0, 300),  # overlapping and adjacent: merged
        "Bytes = 5-9": (5, 10),
    }
    for header, (start, stop) in cases.items():
        resp = await sclient.get(big_song.url, headers={**big_song.account.headers, "Range": header})
        assert resp.status == 206, header
        assert resp.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{n}", header
        data = await resp.read()
        assert sha(data) == sha(body[start:stop]), header
        check_common(resp.headers, big_song)


async def test_several_ranges_are_multipart(sclient: TestClient, big_song: Song) -> None:
    body, n = big_song.body, len(big_song.body)
    want = [(0, 500), (100_000, 165_536), (n - 300, n)]
    header = "bytes=0-199,150-499,100000-165535,-300"
    resp = await sclient.get(big_song.url, headers={**big_song.account.headers, "Range": header})
    assert resp.status == 206
    assert resp.content_type == "multipart/byteranges"
    reader = aiohttp.MultipartReader.from_response(resp)
    got = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, aiohttp.BodyPartReader)
        assert part.headers["Content-Type"] == big_song.data["mime_type"]
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", part.headers["Content-Range"])
        assert m and int(m[3]) == n
        start, stop = int(m[1]), int(m[2]) + 1
        data = await part.read()
        assert sha(data) == sha(body[start:stop])
        got.append((start, stop))
    assert got == want


@pytest.mark.parametrize(("header", "why"), [
    ("bytes=" + ",".join(f"{i * 1000}-{i * 1000 + 9}" for i in range(17)), "17 ranges"),
    ("bytes=0-,0-,0-", "pathological: more than twice the file"),
    ("bytes=abc", "malformed"),
    ("bytes=5-1", "last before first"),
    ("bytes 0-10", "no ="),
    ("items=0-1", "another unit"),
    ("", "empty"),
])
async def test_whole_file_when_the_range_is_ignored(sclient: TestClient, song: Song, header: str,
                                                    why: str) -> None:
    resp = await sclient.get(song.url, headers={**song.account.headers, "Range": header})
    assert resp.status == 200, why
    assert "Content-Range" not in resp.headers
    assert await resp.read() == song.body, why


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes=999999999-1000000000"])
async def test_unsatisfiable_is_416(sclient: TestClient, song: Song, header: str) -> None:
    resp = await sclient.get(song.url, headers={**song.account.headers, "Range": header})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(song.body)}"
    body = await resp.json()
    assert body["error"]["code"] == "range_not_satisfiable"


async def test_conditional_requests(sclient: TestClient, song: Song) -> None:
    h = song.account.headers
    first = await sclient.get(song.url, headers=h)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    rng = {"Range": "bytes=10-29"}

    async def status(extra: dict[str, str]) -> tuple[int, bytes]:
        resp = await sclient.get(song.url, headers={**h, **extra})
        return resp.status, await resp.read()

    assert await status({**rng, "If-Range": etag}) == (206, song.body[10:30])
    assert await status({**rng, "If-Range": modified}) == (206, song.body[10:30])
    for stale in ('"0-0-0"', f"W/{etag}", "Thu, 01 Jan 2015 00:00:00 GMT", "garbage"):
        assert await status({**rng, "If-Range": stale}) == (200, song.body), stale
    for fresh in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'},
                  {"If-None-Match": "*"}, {"If-Modified-Since": modified},
                  {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        resp = await sclient.get(song.url, headers={**h, **fresh})
        assert resp.status == 304, fresh
        assert resp.headers["ETag"] == etag and await resp.read() == b""
        head = await sclient.head(song.url, headers={**h, **fresh})
        assert head.status == 304, fresh
    for changed in ({"If-None-Match": '"other"'},
                    {"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"},
                    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):
        assert await status(changed) == (200, song.body), changed


async def test_concurrent_downloads_and_ranges(aiohttp_client: Any, database_url: str,
                                               tmp_path: Path, audio_dir: Path,
                                               impl: ModuleType) -> None:
    config = make_config(database_url, tmp_path, stream_max_per_user=256)
    client = await aiohttp_client(create_app(config))
    big = await upload_song(client, make_audio(audio_dir, "wav", seconds=30.0))
    body, h = big.body, big.account.headers
    want = sha(body)
    connector = aiohttp.TCPConnector(limit=0)  # the test client's own pool stops at 100
    async with aiohttp.ClientSession(str(client.make_url("/")), connector=connector) as session:

        async def whole() -> str:
            async with session.get(big.url, headers=h) as r:
                assert r.status == 200
                return sha(await r.read())

        assert await asyncio.gather(*(whole() for _ in range(12))) == [want] * 12

        step = (len(body) - 65536) // 200

        async def piece(i: int) -> bool:
            start = i * step
            rng = f"bytes={start}-{start + 65535}"
            async with session.get(big.url, headers={**h, "Range": rng}) as r:
                assert r.status == 206
                return sha(await r.read()) == sha(body[start:start + 65536])

        assert all(await asyncio.gather(*(piece(i) for i in range(200))))


@pytest.mark.parametrize("path", [
    "/api/stream/../x", "/api/stream/%2e%2e", "/api/stream/%2e%2e%2fetc%2fpasswd",
    "/api/stream/..%5C..%5Cwin.ini", "/api/stream/1%00", "/api/stream/1;DROP TABLE songs",
    "/api/stream/1%3BDROP%20TABLE", "/api/stream/-1", "/api/stream/0", "/api/stream/1.5",
    "/api/stream/%D9%A1", "/api/stream/99999999999999999999999",
])
async def test_hostile_ids(sclient: TestClient, member: Account, path: str) -> None:
    resp = await sclient.get(path, headers=member.headers)
    assert resp.status in (400, 404), path
    body = await resp.json()
    assert body["error"]["code"] in ("bad_request", "not_found")


async def test_unknown_song_is_404(sclient: TestClient, member: Account) -> None:
    resp = await sclient.get("/api/stream/987654321", headers=member.headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_a_replaced_file_is_noticed(sclient: TestClient, audio_dir: Path, song: Song) -> None:
    """The open-file cache reopens a file that changed, so the ETag and bytes follow it."""
    h = song.account.headers
    first = await sclient.get(song.url, headers=h)
    path = sclient.app[keys.STREAMING].service.files._rows[song.id][1].path
    new = song.body + b"\0" * 1000
    Path(path).write_bytes(new)
    again = await sclient.get(song.url, headers=h)
    assert await again.read() == new
    assert again.headers["ETag"] != first.headers["ETag"]


# --- the byte-rate limiter (SPEC §6) ----------------------------------------------------------

async def test_a_lone_download_on_an_idle_server_is_not_paced(sclient: TestClient,
                                                              big_song: Song) -> None:
    """Default settings (no egress budget): the whole file at full speed, without the limiter
    being asked at all (no account, no call per chunk)."""
    sched = sclient.app[keys.STREAMING].scheduler
    assert not sched.limited
    resp = await sclient.get(big_song.url, headers=big_song.account.headers)
    assert resp.status == 200
    assert sha(await resp.read()) == sha(big_song.body)
    assert sched.granted == 0 and sched.waits == 0  # the limiter was never in the way
    assert sched.streams == 0 and len(sched) == 0


async def test_a_budget_is_shared_fairly_past_the_floors(aiohttp_client: Any, database_url: str,
                                                         tmp_path: Path, audio_dir: Path,
                                                         impl: ModuleType) -> None:
    """0.4 Mbit/s (50 kB/s) for five WAV streams, each owed 352.8 kB/s (2 × its bitrate): more
    streams than the budget's share supports. The limiter's accounting gives each 10 kB/s, and a
    short seek is still answered at once, byte for byte."""
    config = make_config(database_url, tmp_path, stream_egress_mbps=0.4, stream_burst_seconds=1)
    client = await aiohttp_client(create_app(config))
    state = client.app[keys.STREAMING]
    sched = state.scheduler
    assert sched.limited and sched.egress == 50_000
    song = await upload_song(client, make_audio(audio_dir, "wav", seconds=20.0))
    h = song.account.headers
    received = [0] * 5

    async def reader(i: int) -> None:
        async with client.get(song.url, headers=h) as r:
            assert r.status == 200
            while chunk := await r.content.readany():
                received[i] += len(chunk)

    tasks = [asyncio.create_task(reader(i)) for i in range(5)]
    try:
        def fair() -> bool:
            shares = [p.share for p in sched.pacers()]
            return len(shares) == 5 and all(abs(s - 10_000) < 1e-6 for s in shares)

        await settled(fair)
        assert sched.allocated() == pytest.approx(50_000)
        # Still in the burst (its first chunk is one step of its share) or past it, at 2x.
        assert all(p.floor == math.inf or p.floor == pytest.approx(2 * 176_400) for p in sched.pacers())
        assert sched.waits > 0
        seek = await client.get(song.url, headers={**h, "Range": "bytes=2000000-2065535"})
        assert seek.status == 206 and await seek.read() == song.body[2_000_000:2_065_536]
        assert all(0 < n < len(song.body) for n in received)  # held back, not cut
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # A stream that ends leaves the allocation and frees its slot.
    await settled(lambda: sched.streams == 0 and state.service.slots.total() == 0)


async def test_ffmpeg_seeks_into_a_long_song(sclient: TestClient, audio_dir: Path) -> None:
    """`ffmpeg -ss 150 -i URL` (a player seeking 2.5 minutes in, through a signed URL) decodes
    from there and finishes; on an idle server nothing it read was paced."""
    song = await upload_song(sclient, make_audio(audio_dir, "mp3", seconds=180.0))
    resp = await sclient.get(f"/api/song/{song.id}/stream-url", headers=song.account.headers)
    assert resp.status == 200
    url = (await resp.json())["url"]
    if url.startswith("/"):
        url = str(sclient.make_url(url))
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_path(), "-nostdin", "-v", "error", "-ss", "150", "-i", url, "-t", "2",
        "-f", "null", "-", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        # a bound against a hang, not a speed check
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    sched = sclient.app[keys.STREAMING].scheduler
    assert sched.granted == 0 and sched.waits == 0  # no budget: the limiter never held it


@pytest.mark.skipif(shutil.which("mpv") is None, reason="mpv is missing (.ci/run installs Debian's mpv)")
async def test_mpv_starts_half_way_into_a_long_song(sclient: TestClient, audio_dir: Path) -> None:
    """`mpv --start=50% URL`, the real player: it asks for a range half way in and starts playing
    there; on an idle server nothing it read was paced."""
    song = await upload_song(sclient, make_audio(audio_dir, "mp3", seconds=180.0))
    resp = await sclient.get(f"/api/song/{song.id}/stream-url", headers=song.account.headers)
    url = (await resp.json())["url"]
    proc = await asyncio.create_subprocess_exec(
        "mpv", "--no-config", "--no-video", "--ao=null", "--start=50%", "--length=1",
        "--ytdl=no", "--msg-level=all=error,statusline=status", "--term-status-msg=POS ${=time-pos}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)  # a bound against a hang
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (out + err).decode()[-2000:]
    # Its status lines (one per frame it played, \r-separated) name the position it played.
    text = (out + err).decode(errors="replace").replace("\r", "\n")
    played = [float(m) for m in re.findall(r"POS ([0-9.]+)", text)]
    assert played, text[-2000:]
    assert 89.0 <= played[0] <= 92.0, played[:5]  # half of 180 s, not from the start
    sched = sclient.app[keys.STREAMING].scheduler
    assert sched.granted == 0 and sched.waits == 0  # no budget: the limiter never held it


async def settled(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (bounded) until `condition` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)
