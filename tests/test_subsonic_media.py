"""Media over /rest (SPEC 13, 6, 14): stream and download serve the stored bytes with ranges
exactly as /api/stream does and never count a play; getCoverArt serves the fixed sizes with
`size` mapped to the nearest, for cover ids and item ids; getAvatar and the lyrics methods
answer from what exists; every error is an envelope (validated) in the format asked."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account
from PIL import Image
from subsonic_read_support import catalogue, rest_params
from subsonic_support import call, call_json, error_of, parse_xml
from subsonic_write_support import binary_error, fetch, play_count, sid, stored_bytes

from app.web import keys


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)


async def test_stream_serves_the_stored_bytes_with_ranges(client, cat, auth, member):
    song = cat["songs"][0]
    data = await stored_bytes(client, song["id"])
    size = len(data)
    params = {**auth, "id": sid(song)}

    status, headers, body = await fetch(client, "stream", params)
    assert status == 200 and body == data
    assert headers["Content-Type"] == "audio/mpeg" and headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] and int(headers["Content-Length"]) == size

    for header, start, stop in (("bytes=0-99", 0, 100), ("bytes=100-", 100, size),
                                (f"bytes=-{size // 3}", size - size // 3, size),
                                (f"bytes=10-{size * 4}", 10, size)):
        status, got, body = await fetch(client, "stream", params, headers={"Range": header})
        assert status == 206, header
        assert body == data[start:stop], header
        assert got["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"

    # Several ranges: multipart/byteranges, as /api/stream answers them.
    status, got, body = await fetch(client, "stream", params, headers={"Range": "bytes=0-9,50-59"})
    assert status == 206 and got["Content-Type"].startswith("multipart/byteranges")
    assert data[0:10] in body and data[50:60] in body

    # Unsatisfiable: 416 with the length, and the body is an error envelope.
    status, got, body = await fetch(client, "stream", {**params, "f": "json"},
                                    headers={"Range": f"bytes={size + 10}-"})
    assert status == 416 and got["Content-Range"] == f"bytes */{size}"
    assert json.loads(body)["subsonic-response"]["status"] == "failed"

    # Validators work as on /api/stream; HEAD sends the headers alone.
    status, _, body = await fetch(client, "stream", params, headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, got, body = await fetch(client, "stream", params, head=True)
    assert status == 200 and body == b"" and int(got["Content-Length"]) == size

    # The same bytes as the JSON API's stream.
    resp = await client.get(f"/api/stream/{song['id']}",
                            headers={**member.headers, "Range": "bytes=5-500"})
    assert resp.status == 206 and await resp.read() == data[5:501]


async def test_stream_ignores_format_bitrate_and_offset_until_transcoding(client, cat, auth):
    song = cat["songs"][1]
    data = await stored_bytes(client, song["id"])
    for extra in ({"format": "raw"}, {"format": "mp3", "maxBitRate": "64"},
                  {"maxBitRate": "0", "timeOffset": "30", "estimateContentLength": "true"},
                  {"format": "opus", "maxBitRate": "99999999999999999999"}):
        status, _, body = await fetch(client, "stream", {**auth, "id": sid(song), **extra})
        assert status == 200 and body == data, extra
    code, message = await binary_error(client, "stream", {**auth, "id": sid(song),
                                                          "maxBitRate": "fast"})
    assert code == 10 and "maxBitRate" in message


async def test_streamed_bytes_are_real_audio(client, cat, auth, tmp_path):
    song = cat["songs"][2]
    status, _, body = await fetch(client, "stream", {**auth, "id": sid(song)})
    assert status == 200
    path = tmp_path / "streamed.mp3"
    path.write_bytes(body)
    probe = await asyncio.to_thread(
        subprocess.run, ["ffprobe", "-v", "error", "-show_entries",
                         "stream=codec_name:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True)
    found = json.loads(probe.stdout)
    assert found["streams"][0]["codec_name"] == "mp3"
    assert abs(float(found["format"]["duration"]) - 1.0) < 0.2


async def test_stream_and_download_never_count_a_play(client, cat, auth):
    song = cat["songs"][0]
    before = await play_count(client, song["id"])
    for _ in range(3):
        assert (await fetch(client, "stream", {**auth, "id": sid(song)}))[0] == 200
        assert (await fetch(client, "download", {**auth, "id": sid(song)}))[0] == 200
    await asyncio.sleep(0.5)  # in-process consumers would have counted by now
    assert await play_count(client, song["id"]) == before
    count = await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM plays WHERE song_id = %s", (song["id"],))
    assert int(count) == 0


async def test_download_is_the_original_as_an_attachment(client, cat, auth):
    song = cat["songs"][0]
    data = await stored_bytes(client, song["id"])
    status, headers, body = await fetch(client, "download", {**auth, "id": sid(song)})
    assert status == 200 and body == data
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''" in disposition
    assert disposition.split('"')[1].endswith(".mp3") and song["title"] in disposition
    status, got, body = await fetch(client, "download", {**auth, "id": sid(song)},
                                    headers={"Range": "bytes=7-1000"})
    assert status == 206 and body == data[7:1001] and got["Content-Disposition"] == disposition


async def test_media_errors_are_envelopes_in_the_format_asked(client, cat, auth):
    for method in ("stream", "download"):
        for bad in ("tr-999999999999", "al-1", "ar-1", "im-1", "pl-1", "tr-abc", "tr--1", "12",
                    "tr-" + "9" * 30, ""):
            code, _ = await binary_error(client, method, {**auth, "id": bad} if bad else auth)
            assert code == (10 if not bad else 70), (method, bad, code)
        # XML (the default) as well.
        status, content_type, text = await call(client, method, {**auth, "id": "tr-0"}, fmt=None)
        assert status == 200 and content_type == "text/xml"
        assert parse_xml(text).find("{http://subsonic.org/restapi}error").get("code") == "70"
    # Without credentials: 10, and never a byte of the file.
    code, _ = await binary_error(client, "stream", {"v": "1.16.1", "c": "t",
                                                    "id": sid(cat["songs"][0])})
    assert code == 10


async def test_stream_honours_the_per_user_stream_limit(client, cat, auth):
    client.app[keys.STREAMING].service.slots.limit = 0
    code, message = await binary_error(client, "stream", {**auth, "id": sid(cat["songs"][0])},
                                       headers={"Range": f"bytes=0-{200 * 1024}"})
    assert code == 0 and "streams" in message.lower()


def _side(body: bytes) -> int:
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG"
        return int(image.size[0])


async def test_cover_art_by_cover_id_and_item_ids_at_the_nearest_size(client, cat, auth):
    album = (await call_json(client, "getAlbum", {**auth, "id": f"al-{cat['albums'][0]}"}))["album"]
    cover = album["coverArt"]
    sizes = {}
    for asked, expected in ((None, 640), ("64", 64), ("10", 64), ("150", 64), ("200", 300),
                            ("300", 300), ("500", 640), ("99999999", 640),
                            ("1" + "0" * 40, 640)):
        params = {**auth, "id": cover, **({"size": asked} if asked else {})}
        status, headers, body = await fetch(client, "getCoverArt", params)
        assert status == 200 and headers["Content-Type"] == "image/jpeg", asked
        sizes[asked] = (_side(body), body)
        assert _side(body) <= expected
    assert sizes["64"][1] == sizes["10"][1] and sizes["300"][1] == sizes["200"][1]
    # The renditions differ (the placeholder covers are 640 px).
    assert _side(sizes["64"][1]) == 64 and _side(sizes["300"][1]) == 300

    # An album's, song's or artist's own id answers its current picture.
    for item in (album["id"], album["song"][0]["id"]):
        status, _, body = await fetch(client, "getCoverArt", {**auth, "id": item, "size": "300"})
        assert status == 200 and _side(body) == 300
    artist = (await call_json(client, "getArtist", {**auth, "id": album["artistId"]}))["artist"]
    if artist.get("coverArt"):
        status, _, _ = await fetch(client, "getCoverArt", {**auth, "id": artist["id"]})
        assert status == 200
    else:
        assert (await binary_error(client, "getCoverArt", {**auth, "id": artist["id"]}))[0] == 70


async def test_cover_art_errors(client, cat, auth):
    for bad in ("im-999999999", "al-999999999", "tr-999999999", "ar-999999999", "pl-999999999",
                "cover", "im-", "im-1x"):
        assert (await binary_error(client, "getCoverArt", {**auth, "id": bad}))[0] == 70, bad
    assert (await binary_error(client, "getCoverArt", auth))[0] == 10
    album = (await call_json(client, "getAlbum", {**auth, "id": f"al-{cat['albums'][0]}"}))["album"]
    code, _ = await binary_error(client, "getCoverArt", {**auth, "id": album["coverArt"],
                                                         "size": "big"})
    assert code == 10


async def test_avatar_and_lyrics(client, cat, auth, member):
    code, _ = await binary_error(client, "getAvatar", {**auth, "username": member.username})
    assert code == 70  # no avatar uploaded
    assert (await binary_error(client, "getAvatar", {**auth, "username": "nobody-here"}))[0] == 70
    assert (await binary_error(client, "getAvatar", auth))[0] == 10

    song = sid(cat["songs"][0])
    inner = await call_json(client, "getLyricsBySongId", {**auth, "id": song})
    assert inner["lyricsList"] == {"structuredLyrics": []}
    inner = await call_json(client, "getLyricsBySongId", {**auth, "id": "tr-999999999"})
    assert error_of(inner)[0] == 70
    inner = await call_json(client, "getLyrics", {**auth, "artist": "A", "title": "B"})
    assert inner["lyrics"]["value"] == "" and inner["lyrics"]["artist"] == "A"
