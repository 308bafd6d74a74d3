"""Who may stream: bearer, session cookie or a signed URL; 401/403 before any file is read;
signed URLs; the per-user stream limit (SPEC §6)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from conftest import make_audio, make_config, register
from test_stream import Song, upload_song
from yarl import URL

from app.main import create_app
from app.web import keys
from app.web.middlewares import ACCESS_LINES
from app.web.session import ACCESS_COOKIE


class NoFiles:
    """Stands in for the open-file cache: any attempt to touch a file fails the test."""

    def open(self, path: str) -> Any:
        raise AssertionError(f"a file was opened: {path}")

    def close(self) -> None:
        pass


@pytest.fixture
async def song(client: TestClient, audio_dir: Path) -> Song:
    return await upload_song(client, make_audio(audio_dir, "mp3", seconds=2.0))


async def signed_url(client: TestClient, song: Song, headers: dict[str, str] | None = None) -> str:
    resp = await client.get(f"/api/song/{song.id}/stream-url", headers=headers or song.account.headers)
    assert resp.status == 200
    body = await resp.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    # Absolute, on the address the client reached (players get the URL alone).
    origin = str(client.make_url("/")).rstrip("/")
    assert body["url"].startswith(f"{origin}/api/stream/{song.id}?"), body["url"]
    url = URL(body["url"])
    return str(url.relative())


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


async def assert_refused(client: TestClient, url: str, status: int,
                         headers: dict[str, str] | None = None) -> None:
    for method in ("GET", "HEAD"):
        resp = await client.request(method, url, headers=headers or {})
        assert resp.status == status, (method, url, await resp.text())
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        if method == "GET":
            assert set((await resp.json())["error"]) >= {"code", "message"}


async def test_refusals_come_before_any_file_read(client: TestClient, audio_dir: Path,
                                                  song: Song) -> None:
    other = await upload_song(client, make_audio(audio_dir, "mp3", seconds=2.0), song.account)
    url = await signed_url(client, song)
    other_url = await signed_url(client, other)
    service = client.app[keys.STREAMING].service
    expired = service.sign_url(song.id, song.account.id, 1, now=time.time() - 10 ** 6)
    expired_url = f"{song.url}?" + "&".join(f"{k}={v}" for k, v in expired.query.items())
    client.app[keys.STREAMING].files = NoFiles()  # type: ignore[assignment]

    await assert_refused(client, song.url, 401)
    await assert_refused(client, song.url, 401, {"Authorization": "Bearer not-a-jwt"})
    await assert_refused(client, song.url, 401, {"Authorization": "Basic dXNlcjpwYXNz"})
    await assert_refused(client, song.url, 401, {"Cookie": f"{ACCESS_COOKIE}=garbage"})
    await assert_refused(client, expired_url, 401)
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    await assert_refused(client, with_param(url, sig=sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")), 401)
    await assert_refused(client, with_param(url, exp=str(int(time.time()) + 10 ** 7)), 401)
    await assert_refused(client, with_param(url, uid=str(song.account.id + 1)), 401)
    await assert_refused(client, with_param(url, sig=""), 401)
    await assert_refused(client, with_param(url, exp="soon"), 401)
    # The same numbers in other scripts are not numbers (SPEC 10), even where int() takes them.
    fields = dict(parse_qsl(urlsplit(url).query))
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    await assert_refused(client, with_param(url, uid=fields["uid"].translate(arabic)), 401)
    await assert_refused(client, with_param(url, exp=" " + fields["exp"]), 401)
    # a genuine signature for another song: the credential does not cover this one
    await assert_refused(client, other_url.replace(other.url, song.url), 403)
    # a valid credential and an unknown song: 404, still without touching a file
    await assert_refused(client, "/api/stream/987654321", 404, song.account.headers)
    resp = await client.get("/api/song/987654321/stream-url", headers=song.account.headers)
    assert resp.status == 404


async def test_signed_url_streams_without_header_or_cookie(client: TestClient, song: Song) -> None:
    member = await register(client)
    url = await signed_url(client, song, member.headers)
    client.session.cookie_jar.clear()
    resp = await client.get(url)
    assert resp.status == 200 and await resp.read() == song.body
    resp = await client.get(url, headers={"Range": "bytes=-100"})
    assert resp.status == 206 and await resp.read() == song.body[-100:]
    # The signed URL belongs to the session that asked for it: logging out ends it.
    out = await client.post("/api/auth/logout", headers=member.headers)
    assert out.status in (200, 204)
    await assert_refused(client, url, 401)


async def test_signed_url_needs_a_session(client: TestClient, song: Song) -> None:
    resp = await client.get(f"/api/song/{song.id}/stream-url")
    assert resp.status == 401


async def test_cookie_session_streams(client: TestClient, song: Song) -> None:
    client.session.cookie_jar.clear()
    resp = await client.get(song.url, headers={"Cookie": f"{ACCESS_COOKIE}={song.account.access}"})
    assert resp.status == 200 and await resp.read() == song.body


async def test_per_user_limit_429_and_slots_freed(aiohttp_client: Any, database_url: str,
                                                  tmp_path: Path, audio_dir: Path) -> None:
    # A tiny egress budget, so the first streams stay open while the next one is refused.
    config = make_config(database_url, tmp_path, stream_max_per_user=2, stream_burst_seconds=0,
                         stream_pace=0.05, stream_egress_mbps=0.01)
    client = await aiohttp_client(create_app(config))
    song = await upload_song(client, make_audio(audio_dir, "wav", seconds=5.0))
    slots = client.app[keys.STREAMING].service.slots
    h = song.account.headers
    open_streams = [await client.get(song.url, headers=h) for _ in range(2)]
    assert all(r.status == 200 for r in open_streams)
    assert slots.in_use(song.account.id) == 2
    refused = await client.get(song.url, headers=h)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "rate_limited"
    # Other users are not affected, and HEAD takes no slot.
    other = await register(client)
    head = await client.head(song.url, headers=h)
    assert head.status == 200
    r = await client.get(song.url, headers={**other.headers, "Range": "bytes=0-99"})
    assert r.status == 206 and await r.read() == song.body[:100]
    for r in open_streams:
        r.close()  # the client goes away mid-stream
    await settled(lambda: slots.in_use(song.account.id) == 0)
    again = await client.get(song.url, headers={**h, "Range": "bytes=0-9"})
    assert again.status == 206 and await again.read() == song.body[:10]
    await settled(lambda: slots.total() == 0)


async def settled(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until `condition` holds (a handler finishes just after its client has read all)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_stream_url_honours_a_trusted_proxy_only(aiohttp_client, database_url, tmp_path, audio_dir,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """X-Forwarded-Proto and X-Forwarded-Host name the URL's scheme and host when the peer is in
    SONORA_TRUSTED_PROXIES, and are ignored from anyone else."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "music.example.org"}
    for trusted, expected in (("127.0.0.1/32", "https://music.example.org"), ("10.9.9.9", None)):
        client = await aiohttp_client(create_app(make_config(database_url, tmp_path, trusted_proxies=(trusted,))))
        song = await upload_song(client, make_audio(audio_dir, "mp3", seconds=2.0))
        resp = await client.get(f"/api/song/{song.id}/stream-url", headers={**song.account.headers, **forwarded})
        url = URL((await resp.json())["url"])
        origin = expected or str(client.make_url("/")).rstrip("/")
        assert str(url.origin()) == origin and url.path == f"/api/stream/{song.id}"
        # A forged host a URL cannot carry is not taken, even from a trusted proxy.
        resp = await client.get(f"/api/song/{song.id}/stream-url",
                                headers={**song.account.headers, "X-Forwarded-Host": "evil.example/x?"})
        assert URL((await resp.json())["url"]).host == client.make_url("/").host
        # Nor a port no URL can carry, from the proxy or in the Host header itself.
        for header in ("X-Forwarded-Host", "Host"):
            resp = await client.get(f"/api/song/{song.id}/stream-url",
                                    headers={**song.account.headers, header: "music.example.org:99999"})
            assert resp.status == 200, await resp.text()
            assert URL((await resp.json())["url"]).port != 99999
        # The signed URL works with no header or cookie, and its user is in the access log.
        caplog.clear()
        caplog.set_level(logging.INFO, logger="sonora.access")
        plain = await client.get(str(url.relative()))
        assert plain.status == 200 and await plain.read() == song.body
        ACCESS_LINES.flush()
        lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "sonora.access").splitlines()
        assert any(f"GET /api/stream/{song.id} 200" in line and line.endswith(f"user={song.account.id}")
                   for line in lines), lines
